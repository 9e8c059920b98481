import Dispatch
import Logging
import Metrics
import RingfenceAddresses
import RingfenceControl
import RingfenceControlServer
import RingfenceFirewall
import RingfenceGuard
import RingfenceIO
import RingfenceNames
import RingfencePolicy
import RingfenceRelay
import RingfenceSockets
import RingfenceStatus

#if canImport(Glibc)
import Glibc
#endif

/// The running `proxyd`: the policy in force, the kernel fence that enforces it, its relay and
/// broker guards, and the control plane (control socket, metrics, systemd notifications).
///
/// All state is confined to `queue`; signals and control requests arrive there. A reload
/// (SIGHUP, `proxyctl reload`, or the policy watch) either applies the whole new policy or
/// changes nothing: a bad file, a guard that cannot start or an nftables refusal leaves the
/// policy in force standing, and is logged line by line and returned to the caller.
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
    /// The policy in force: the file's, with its peer names resolved (`writtenPolicy`
    /// resolving `peerNames`' addresses). Only touched on `queue`.
    private(set) var policy: Policy?
    /// The policy as the file says it, peer names unresolved. Only touched on `queue`.
    private(set) var writtenPolicy: Policy?
    /// The policy's peer names (`dns:NAME`, `lws:group`) and what they resolve to, the timer of
    /// their next lookups, and whether their changed addresses wait to be applied. Only touched
    /// on `queue` (lookups run on `resolverQueue`).
    var peerNames = PeerNameTable()
    var peerNamesTimer: (any DispatchSourceTimer)?
    var peerNamesApplyPending = false
    let resolverQueue = DispatchQueue(label: "ringfence.names", attributes: .concurrent)
    /// The running relay and broker guards, and the counters of retired ones. Only touched on `queue`.
    let roster: GuardRoster
    /// Guards started while running from typed settings (`startGuard`), not from the policy, in
    /// the order started: a reload leaves them alone. Only touched on `queue`.
    private(set) var runtimeGuards: [String] = []
    /// Discover guards at work: listeners noticed, probed, brokered. Only touched on `queue`.
    private(set) lazy var discovery = DiscoveryService(daemon: self)
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
    /// The policy file's watch while `[daemon] watch = true` (`followPolicyFile()`). Only
    /// touched on `queue`.
    var policyWatch: PolicyWatch?

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
        let strikes = StrikeInbox()
        roster = GuardRoster(factory: LiveGuardFactory(group: group, logger: logger, strikes: strikes))
        do {
            firewall = try Firewall()
        } catch {
            throw .firewall(error)
        }
        Posix.ignoreSIGPIPE()
        DescriptorBudget.raise(logger: logger)
        onSignal(SIGHUP) { daemon in
            daemon.logger.info("SIGHUP: reloading", metadata: ["policy": "\(daemon.policyPath)"])
            _ = daemon.reload()
        }
        onSignal(SIGTERM) { $0.shutdown(signal: "SIGTERM") }
        onSignal(SIGINT) { $0.shutdown(signal: "SIGINT") }
        strikes.connect { [weak self] guardName, ban in
            guard let self else { return }
            queue.async { self.banStruck(ban, reportedBy: guardName) }
        }
    }

    /// Loads the policy, opens the control socket and the metrics endpoint, starts its guards,
    /// applies its fence, then tells systemd it is ready. Call once, before `run()`.
    /// - Throws: `DaemonError` saying what is wrong; nothing was applied.
    public func start() throws(DaemonError) {
        let outcome: Result<Policy, DaemonError> = queue.sync {
            do throws(DaemonError) {
                let written = try Self.load(policyPath)
                // Names admit nobody until their first lookup, which starts once the fence stands.
                let loaded = written.resolvingNames([:])
                // The control plane first: a socket path in use fails the start before the fence changes.
                try startControlPlane(loaded)
                do throws(DaemonError) {
                    _ = try carryOut(ReloadPlan(from: nil, running: [:], to: loaded), next: loaded)
                } catch {
                    stopControlPlane()
                    throw error
                }
                policy = loaded
                writtenPolicy = written
                discovery.follow(loaded)
                followPolicyFile()
                followPeerNames(written)
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
            let written = try Self.load(source)
            // Names kept from the policy in force keep their addresses; new ones admit nobody
            // until their first lookup, right after.
            let next = written.resolvingNames(peerNames.addresses)
            let plan = ReloadPlan(from: policy, running: policyGuards, to: next)
            var cut = dryRun ? roster.wouldCut(GuardChanges(plan)) : try carryOut(plan, next: next)
            if !dryRun {
                policy = next
                writtenPolicy = written
                // Discovered XPUBs' brokers take the new allowlist here; their cuts join the report.
                cut += discovery.follow(next)
            }
            let report = ReloadReport(
                dryRun: dryRun, policy: source, added: plan.added.map(\.name) + plan.kernelAdded,
                removed: (plan.removed + plan.kernelRemoved).sorted(), restarted: plan.restarted.map(\.name),
                updated: plan.updated.map(\.name) + plan.kernelUpdated, rules: plan.rules, cut: cut,
                durationMs: (ContinuousClock.now - began).inSeconds * 1e3)
            if !dryRun {
                policyPath = source
                followPolicyFile()
                followPeerNames(written)
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

    /// Replaces the policy in force with `next` (the same file's, its peer names resolved anew).
    /// - Returns: the connections of discovered XPUBs' brokers it closed.
    func adopt(_ next: Policy) -> [ReloadReport.Cut] {
        dispatchPrecondition(condition: .onQueue(queue))
        policy = next
        return discovery.follow(next)
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
        discovery.stop()
        roster.stopAll()
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

    /// The relay and broker guards of the policy in force that run, by name, as last applied.
    /// A discover guard counts as running (its brokers come and go with what is discovered), so
    /// that a reload reports it added only once.
    var policyGuards: [String: RingfencePolicy.Guard] {
        var running: [String: RingfencePolicy.Guard] = [:]
        for spec in policy?.guards ?? [] where !spec.isKernelOnly && (spec.discovers || roster.guards[spec.name] != nil) {
            running[spec.name] = spec
        }
        return running
    }

    /// Carries out `plan` (`GuardRoster.carryOut`), the fence being `next`'s.
    /// - Returns: the connections closed.
    func carryOut(_ plan: ReloadPlan, next: Policy) throws(DaemonError) -> [ReloadReport.Cut] {
        let previous = policy
        return try roster.carryOut(
            GuardChanges(plan), fence: FenceClosure { () throws(DaemonError) in try self.applyFence(next, replacing: previous) })
    }

    /// Starts a relay or broker guard from typed settings while the daemon runs, with no policy
    /// file involved (discovery). It counts in status, peers, kicks and metrics like any guard;
    /// a reload leaves it alone. The kernel fence is not changed. On the daemon's queue.
    /// - Throws: `DaemonError.guardFailed` when its name is taken (by the policy or another
    ///   such guard) or it cannot start.
    public func startGuard(_ settings: any GuardConfiguration) throws(DaemonError) {
        dispatchPrecondition(condition: .onQueue(queue))
        let name = settings.frontEnd.name
        if policy?.guards.contains(where: { $0.name == name }) == true {
            throw .guardFailed("guard '\(name)': the policy has a guard of that name")
        }
        try roster.add(settings)
        runtimeGuards.append(name)
        logger.info("guard started", metadata: ["guard": "\(name)", "kind": "\(settings.frontEnd.kind.rawValue)"])
    }

    /// Stops a guard `startGuard` started, closing its connections (`guard-removed`); its
    /// counters are kept. On the daemon's queue.
    /// - Returns: the connections closed; nil when no such guard was started.
    @discardableResult
    public func retireGuard(named name: String) -> [ReloadReport.Cut]? {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let index = runtimeGuards.firstIndex(of: name) else { return nil }
        runtimeGuards.remove(at: index)
        let cut = roster.retire(named: name, reason: .guardRemoved)
        logger.info("guard retired", metadata: ["guard": "\(name)", "cut": "\(cut?.count ?? 0)"])
        return cut
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

    func logPolicy(_ policy: Policy, event: String, report: ReloadReport? = nil) {
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
        DescriptorBudget.check(policy, logger: logger)
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
