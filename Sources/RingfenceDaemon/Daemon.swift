import Dispatch
import Logging
import Metrics
import RingfenceAddresses
import RingfenceBroker
import RingfenceControl
import RingfenceFirewall
import RingfenceIO
import RingfencePolicy
import RingfenceRelay
import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// The running `proxyd`: the policy in force, the kernel fence that enforces it, its relay and
/// broker guards, and the control plane (control socket, metrics, systemd notifications).
///
/// All state is confined to `queue`; signals and control requests arrive there. A reload
/// (SIGHUP or `proxyctl reload`) either applies the whole new policy or changes nothing: a bad
/// file, a guard that cannot start or an nftables refusal leaves the policy in force standing,
/// and is logged line by line and returned to the caller.
public final class Daemon: @unchecked Sendable {
    private(set) var policyPath: String
    let controlSocketOverride: String?
    let logger: Logger
    let queue = DispatchQueue(label: "ringfence.daemon")
    /// The control socket's and the metrics endpoint's loop.
    let controlLoop = EventLoop(index: 0, label: "ringfence.control")
    let firewall: Firewall
    private let group = EventLoopGroup()
    let startedAt = ContinuousClock.now
    /// The policy in force. Only touched on `queue`.
    private(set) var policy: Policy?
    /// The running relay and broker guards, by name. Only touched on `queue`.
    private(set) var services: [String: any GuardService] = [:]
    /// The final counters of guards stopped or replaced, by name, so that a guard's counters
    /// carry on across reloads. Only touched on `queue`.
    private(set) var retired: [String: GuardCounters] = [:]
    private(set) var reloadsApplied: UInt64 = 0
    private(set) var reloadsRefused: UInt64 = 0
    /// `proxyctl kick` calls, and bans set by them, since start. Only touched on `queue`.
    var kicks: UInt64 = 0
    var bansIssued: UInt64 = 0
    private var signalSources: [any DispatchSourceSignal] = []
    var controlServer: ControlServer?
    var metricsServer: MetricsServer?
    /// The `/metrics` page's registry, and the counters of the daemon's events in it.
    let metrics = MetricsExposition()
    let notifier: SystemdNotifier?
    var watchdog: (any DispatchSourceTimer)?

    /// Takes over SIGHUP, SIGTERM and SIGINT at once, so that no signal can kill the process with
    /// its default action between applying the fence and serving; signals that arrive during
    /// `start()` are handled after it.
    /// - Parameter controlSocket: overrides the policy's `[daemon] control_socket`.
    /// - Throws: `DaemonError.firewall` when no nftables context can be made.
    public init(policyPath: String, controlSocket: String? = nil, logger: Logger) throws(DaemonError) {
        self.policyPath = policyPath
        controlSocketOverride = controlSocket
        self.logger = logger
        notifier = SystemdNotifier()
        do {
            firewall = try Firewall()
        } catch {
            throw .firewall(error)
        }
        Posix.ignoreSIGPIPE()
        _ = Posix.raiseOpenFileLimit()
        onSignal(SIGHUP) { daemon in
            daemon.logger.info("SIGHUP: reloading", metadata: ["policy": "\(daemon.policyPath)"])
            _ = daemon.reload()
        }
        onSignal(SIGTERM) { $0.shutdown(signal: "SIGTERM") }
        onSignal(SIGINT) { $0.shutdown(signal: "SIGINT") }
    }

    /// Loads the policy, opens the control socket and the metrics endpoint, starts its guards,
    /// applies its fence, then tells systemd it is ready. Call once, before `run()`.
    /// - Throws: `DaemonError` saying what is wrong; nothing was applied.
    public func start() throws(DaemonError) {
        let outcome: Result<Policy, DaemonError> = queue.sync {
            do throws(DaemonError) {
                let loaded = try Self.load(policyPath)
                // The control plane first: a socket path in use fails the start before the fence changes.
                try startControlPlane(loaded)
                do throws(DaemonError) {
                    _ = try carryOut(ReloadPlan(from: nil, running: [:], to: loaded), next: loaded)
                } catch {
                    stopControlPlane()
                    throw error
                }
                policy = loaded
                return .success(loaded)
            } catch {
                return .failure(error)
            }
        }
        let loaded = try outcome.get()
        logPolicy(loaded, event: "policy loaded")
        notifyReady()
    }

    /// Reads the policy file (`path`, or the daemon's own) and, if it is good and every new guard
    /// starts and nftables takes the rules, applies it: guards added, restarted, updated in
    /// place or stopped, the fence changed in place (`Firewall.apply`), and the connections of
    /// peers no longer allowed closed. With `dryRun` nothing changes and the report says what would.
    /// On the daemon's queue.
    public func reload(from path: String? = nil, dryRun: Bool = false) -> Result<ReloadReport, ControlError> {
        dispatchPrecondition(condition: .onQueue(queue))
        let began = ContinuousClock.now
        let source = path ?? policyPath
        if !dryRun { try? notifier?.reloading() }
        defer { if !dryRun { notifyReady() } }
        do throws(DaemonError) {
            let next = try Self.load(source)
            let plan = ReloadPlan(from: policy, running: services.mapValues(\.spec), to: next)
            let cut = dryRun ? wouldCut(plan, next: next) : try carryOut(plan, next: next)
            let report = ReloadReport(
                dryRun: dryRun, policy: source, added: plan.added.map(\.name) + plan.kernelAdded,
                removed: (plan.removed + plan.kernelRemoved).sorted(), restarted: plan.restarted.map(\.name),
                updated: plan.updated.map(\.name) + plan.kernelUpdated, rules: plan.rules, cut: cut,
                durationMs: (ContinuousClock.now - began).inSeconds * 1e3)
            if !dryRun {
                policy = next
                policyPath = source
                reloadsApplied += 1
                metrics.reloadsApplied.increment()
                logPolicy(next, event: "policy reloaded", report: report)
            }
            return .success(report)
        } catch {
            if !dryRun {
                reloadsRefused += 1
                metrics.reloadsRefused.increment()
                logger.error("reload refused; the policy in force stays", metadata: ["policy": "\(source)"])
                for line in error.description.split(separator: "\n") {
                    logger.error("\(line)", metadata: ["policy": "\(source)"])
                }
            }
            return .failure(error.controlError(policy: source))
        }
    }

    /// Serves until SIGTERM or SIGINT. Never returns.
    public func run() -> Never {
        logger.info("running", metadata: ["pid": "\(getpid())"])
        dispatchMain()
    }

    private func shutdown(signal: String) -> Never {
        dispatchPrecondition(condition: .onQueue(queue))
        try? notifier?.stopping()
        stopControlPlane()
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
        // The default action must not run (SIGHUP would kill us); the Dispatch source does the
        // work (docs/libdispatch.md §8).
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

    /// Carries out `plan`: starts the guards added or restarted, applies the fence, then stops
    /// the guards removed or replaced and updates the rest in place. If a guard cannot start or
    /// nftables refuses, the guards just started are stopped and everything in force stays.
    /// - Returns: the connections closed.
    private func carryOut(_ plan: ReloadPlan, next: Policy) throws(DaemonError) -> [ReloadReport.Cut] {
        var started: [String: any GuardService] = [:]
        do throws(DaemonError) {
            for spec in plan.added + plan.restarted { started[spec.name] = try startService(spec) }
            try applyFence(next, replacing: policy)
        } catch {
            for service in started.values { service.stop() }
            throw error
        }
        var cut: [ReloadReport.Cut] = []
        for (name, reason) in plan.stopped {
            guard let old = services.removeValue(forKey: name) else { continue }
            cut += old.snapshot().connections.map { ReloadReport.Cut($0, reason: reason) }
            old.stop()
            retired[name] = (retired[name] ?? GuardCounters()) + old.snapshot().status.counters
        }
        // Allowlists and limits change in place, after the fence: nothing else is disturbed.
        for spec in plan.updated { cut += services[spec.name]?.update(to: spec) ?? [] }
        services.merge(started) { $1 }
        return cut
    }

    /// The connections `plan` would close, for a dry run.
    private func wouldCut(_ plan: ReloadPlan, next: Policy) -> [ReloadReport.Cut] {
        var cut: [ReloadReport.Cut] = []
        for (name, reason) in plan.stopped {
            guard let service = services[name] else { continue }
            cut += service.snapshot().connections.map { ReloadReport.Cut($0, reason: reason) }
        }
        for spec in plan.updated {
            guard let service = services[spec.name] else { continue }
            for connection in service.snapshot().connections {
                if let address = IPAddress(connection.peer), !spec.admits(address) {
                    cut.append(ReloadReport.Cut(connection, reason: "not-allowed"))
                }
            }
        }
        return cut
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
        case .firewall, .host:
            preconditionFailure("firewall and host guards live in the kernel only")
        }
    }

    private func applyFence(_ next: Policy, replacing previous: Policy?) throws(DaemonError) {
        do {
            switch try firewall.apply(next, replacing: previous) {
            case .applied(let table, let change, let refusals):
                for refusal in refusals {
                    logger.warning(
                        "the kernel's table was not the one last applied; tried the next way",
                        metadata: ["table": "\(table)", "refused": "\(refusal)"])
                }
                logger.info(
                    "fence applied",
                    metadata: ["table": "\(table)", "guards": "\(next.guards.count)", "change": "\(change.rawValue)"])
            case .renderedOnly:
                logger.warning(
                    "apply = false: rules rendered but not loaded; the kernel fence is not managed by proxyd",
                    metadata: ["table": "\(next.firewall.table)"])
            }
        } catch {
            throw .firewall(error)
        }
    }

    private func logPolicy(_ policy: Policy, event: String, report: ReloadReport? = nil) {
        var metadata: Logger.Metadata = ["policy": "\(policyPath)", "guards": "\(policy.guards.count)"]
        if let report {
            metadata["added"] = "\(report.added.joined(separator: ","))"
            metadata["removed"] = "\(report.removed.joined(separator: ","))"
            metadata["restarted"] = "\(report.restarted.joined(separator: ","))"
            metadata["updated"] = "\(report.updated.joined(separator: ","))"
            metadata["rules_changed"] = "\(report.rules.added.count + report.rules.removed.count)"
            metadata["cut"] = "\(report.cut.count)"
            metadata["ms"] = "\(Int(report.durationMs.rounded()))"
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
/// place, asks for its status and stops it.
protocol GuardService: AnyObject {
    var spec: Guard { get }
    func stop()
    /// Whether `update(to:)` can apply `next` without replacing the guard.
    func canUpdate(to next: Guard) -> Bool
    /// Applies `next` in place; returns the connections closed. Blocks until done.
    func update(to next: Guard) -> [ReloadReport.Cut]
    /// Status and live connections. Blocks until taken.
    func snapshot() -> GuardSnapshot
    /// Closes the live connections of peers in `block`; returns them. Blocks until done.
    func kick(_ block: AddressSet) -> [ReloadReport.Cut]
}

extension RelayGuard: GuardService {}
extension BrokerGuard: GuardService {}
