import Dispatch
import Logging
import RingfenceBroker
import RingfenceFirewall
import RingfenceIO
import RingfencePolicy
import RingfenceRelay

#if canImport(Glibc)
import Glibc
#endif

/// The running `proxyd`: the policy in force, the kernel fence that enforces it, and its relay
/// and broker guards.
///
/// All state is confined to `queue`; signals arrive there as Dispatch sources. A reload either
/// replaces policy, guards and fence together or changes nothing: a bad file, a guard that
/// cannot start or an nftables refusal leaves the policy in force standing, and is logged line
/// by line.
public final class Daemon: @unchecked Sendable {
    /// What a reload did.
    public enum ReloadOutcome: Sendable {
        case applied(GuardChanges)
        case refused(DaemonError)
    }

    private let policyPath: String
    private let logger: Logger
    private let queue = DispatchQueue(label: "ringfence.daemon")
    private let firewall: Firewall
    private let group = EventLoopGroup()
    /// The policy in force. Only touched on `queue`.
    private var policy: Policy?
    /// The running relay and broker guards, by name. Only touched on `queue`.
    private var services: [String: any GuardService] = [:]
    private var signalSources: [any DispatchSourceSignal] = []

    /// Takes over SIGHUP, SIGTERM and SIGINT at once, so that no signal can kill the process with
    /// its default action between applying the fence and serving; signals that arrive during
    /// `start()` are handled after it.
    /// - Throws: `DaemonError.firewall` when no nftables context can be made.
    public init(policyPath: String, logger: Logger) throws(DaemonError) {
        self.policyPath = policyPath
        self.logger = logger
        do {
            firewall = try Firewall()
        } catch {
            throw .firewall(error)
        }
        Posix.ignoreSIGPIPE()
        _ = Posix.raiseOpenFileLimit()
        onSignal(SIGHUP) { daemon in
            daemon.logger.info("SIGHUP: reloading", metadata: ["policy": "\(daemon.policyPath)"])
            daemon.reload()
        }
        onSignal(SIGTERM) { $0.shutdown(signal: "SIGTERM") }
        onSignal(SIGINT) { $0.shutdown(signal: "SIGINT") }
    }

    /// Loads the policy, starts its guards and applies its fence (`replaceGuardsAndFence`), on
    /// the daemon's queue. Call once, before `run()`.
    /// - Throws: `DaemonError` saying what is wrong; nothing was applied.
    public func start() throws(DaemonError) {
        let outcome: Result<Policy, DaemonError> = queue.sync {
            do throws(DaemonError) {
                let loaded = try Self.load(policyPath)
                try replaceGuardsAndFence(with: loaded)
                policy = loaded
                return .success(loaded)
            } catch {
                return .failure(error)
            }
        }
        logPolicy(try outcome.get(), event: "policy loaded")
    }

    /// Re-reads the policy file and, if it is good, replaces guards and fence
    /// (`replaceGuardsAndFence`: guards kept, updated in place, started or stopped; the fence
    /// in one transaction).
    @discardableResult
    public func reload() -> ReloadOutcome {
        dispatchPrecondition(condition: .onQueue(queue))
        do {
            let next = try Self.load(policyPath)
            try replaceGuardsAndFence(with: next)
            let changes = GuardChanges(from: policy, to: next)
            policy = next
            logPolicy(next, event: "policy reloaded", changes: changes)
            return .applied(changes)
        } catch {
            logger.error(
                "reload refused; the policy in force stays", metadata: ["policy": "\(policyPath)"])
            for line in error.description.split(separator: "\n") {
                logger.error("\(line)", metadata: ["policy": "\(policyPath)"])
            }
            return .refused(error)
        }
    }

    /// Serves until SIGTERM or SIGINT. Never returns.
    public func run() -> Never {
        logger.info("running", metadata: ["pid": "\(getpid())"])
        dispatchMain()
    }

    private func shutdown(signal: String) -> Never {
        dispatchPrecondition(condition: .onQueue(queue))
        for service in services.values { service.stop() }
        if let policy, policy.firewall.apply {
            if policy.firewall.removeOnExit {
                do {
                    try firewall.remove(table: policy.firewall.table)
                    logger.info("fence removed (remove_on_exit = true)", metadata: ["table": "\(policy.firewall.table)"])
                } catch {
                    logger.error("could not remove the fence", metadata: ["error": "\(error)"])
                }
            } else {
                logger.info(
                    "fence left in place (remove_on_exit = false): guarded ports stay closed to other peers",
                    metadata: ["table": "\(policy.firewall.table)"])
            }
        }
        logger.info("stopped", metadata: ["signal": "\(signal)"])
        exit(0)
    }

    private func onSignal(_ number: Int32, _ handler: @escaping @Sendable (Daemon) -> Void) {
        // The default action must not run (SIGHUP would kill us); the Dispatch source does the work.
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler { [unowned self] in handler(self) }
        source.resume()
        signalSources.append(source)
    }

    private static func load(_ path: String) throws(DaemonError) -> Policy {
        do {
            return try Policy.load(path: path)
        } catch {
            throw .policy(error)
        }
    }

    /// Starts the relay and broker guards that are new or changed, then applies the fence, then
    /// stops the guards replaced or removed. If a guard cannot start or nftables refuses, the
    /// guards just started are stopped and everything in force stays.
    private func replaceGuardsAndFence(with next: Policy) throws(DaemonError) {
        var kept: [String: any GuardService] = [:]
        var started: [String: any GuardService] = [:]
        do throws(DaemonError) {
            for spec in next.guards where spec.kind != .firewall {
                if let running = services[spec.name], running.canUpdate(to: spec) {
                    kept[spec.name] = running
                    continue
                }
                started[spec.name] = try startService(spec)
            }
            try applyFence(next, replacing: policy)
        } catch {
            for service in started.values { service.stop() }
            throw error
        }
        for (name, service) in services where kept[name] == nil { service.stop() }
        // Allowlist changes are applied in place, after the fence: nothing else is disturbed.
        for spec in next.guards {
            if let service = kept[spec.name], service.spec != spec { service.update(to: spec) }
        }
        services = kept.merging(started) { $1 }
    }

    private func startService(_ spec: Guard) throws(DaemonError) -> any GuardService {
        switch spec.kind {
        case .tcp:
            do throws(RelayError) {
                let relay = try RelayGuard(spec, group: group, logger: logger)
                try relay.start()
                return relay
            } catch {
                throw .guardFailed(error.description)
            }
        case .zmqXPUB:
            do throws(BrokerError) {
                let broker = try BrokerGuard(spec, logger: logger)
                try broker.start()
                return broker
            } catch {
                throw .guardFailed(error.description)
            }
        case .firewall:
            preconditionFailure("firewall guards live in the kernel only")
        }
    }

    private func applyFence(_ next: Policy, replacing previous: Policy?) throws(DaemonError) {
        do {
            switch try firewall.apply(next, replacing: previous) {
            case .applied(let table):
                logger.info("fence applied", metadata: ["table": "\(table)", "guards": "\(next.guards.count)"])
            case .renderedOnly:
                logger.warning(
                    "apply = false: rules rendered but not loaded; the kernel fence is not managed by proxyd",
                    metadata: ["table": "\(next.firewall.table)"])
            }
        } catch {
            throw .firewall(error)
        }
    }

    private func logPolicy(_ policy: Policy, event: String, changes: GuardChanges? = nil) {
        var metadata: Logger.Metadata = ["policy": "\(policyPath)", "guards": "\(policy.guards.count)"]
        if let changes {
            metadata["added"] = "\(changes.added.joined(separator: ","))"
            metadata["removed"] = "\(changes.removed.joined(separator: ","))"
            metadata["changed"] = "\(changes.changed.joined(separator: ","))"
        }
        logger.info("\(event)", metadata: metadata)
        for item in policy.guards {
            logger.info(
                "guard",
                metadata: [
                    "name": "\(item.name)", "kind": "\(item.kind.rawValue)",
                    "ports": "\(item.ports.map(String.init).joined(separator: ","))",
                    "allow": "\(item.allowEntries.joined(separator: ","))",
                    "ipv4_intervals": "\(item.allow.ipv4.count)", "ipv6_intervals": "\(item.allow.ipv6.count)",
                ])
        }
    }
}

/// A guard that carries traffic (the relay or the broker), as the daemon starts, updates in
/// place and stops it.
protocol GuardService: AnyObject {
    var spec: Guard { get }
    func stop()
    /// Whether `update(to:)` can apply `next` without replacing the guard.
    func canUpdate(to next: Guard) -> Bool
    func update(to next: Guard)
}

extension RelayGuard: GuardService {}
extension BrokerGuard: GuardService {}

/// The guards a reload adds, removes or changes, by name.
public struct GuardChanges: Hashable, Sendable {
    public var added: [String]
    public var removed: [String]
    public var changed: [String]

    public init(from old: Policy?, to new: Policy) {
        let before = Dictionary((old?.guards ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.guards.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        added = after.keys.filter { before[$0] == nil }.sorted()
        removed = before.keys.filter { after[$0] == nil }.sorted()
        changed = after.keys.filter { name in before[name].map { $0 != after[name] } ?? false }.sorted()
    }
}
