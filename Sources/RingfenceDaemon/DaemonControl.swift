import Dispatch
import Logging
import RingfenceControl
import RingfenceControlServer
import RingfenceFirewall
import RingfenceGuard
import RingfenceIO
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's control plane: the control socket's requests, the status and peer lists they
/// return, the metrics endpoint, and systemd's readiness and watchdog notifications.
extension Daemon {
    /// Opens the control socket and, if the policy asks, the metrics endpoint. At start only:
    /// a reload that changes `control_socket` or `metrics_listen` takes effect at the next start.
    func startControlPlane(_ policy: Policy) throws(DaemonError) {
        let path = controlSocketPath(policy)
        do throws(ControlServerError) {
            controlServer = try ControlServer(path: path, loop: controlLoop, logger: logger) { [weak self] request, credentials, reply in
                guard let self else { return }
                queue.async { reply(self.handle(request, credentials: credentials)) }
            }
        } catch {
            throw .controlPlane(error.description)
        }
        logger.info("control socket listening", metadata: ["path": "\(path)"])
        if let endpoint = policy.daemon.metricsListen {
            // A start that fails here closes the control socket again (and removes its file).
            guard let address = Posix.resolve(host: endpoint.host, port: endpoint.port) else {
                stopControlPlane()
                throw .controlPlane("metrics_listen '\(endpoint)' does not resolve")
            }
            do throws(Errno) {
                metricsServer = try MetricsServer(address: address, loop: controlLoop, logger: logger) { [weak self] in
                    guard let self else { return "" }
                    return queue.sync { self.metricsText() }
                }
            } catch {
                stopControlPlane()
                throw .controlPlane(
                    "cannot serve metrics on \(endpoint): \(error)"
                        + (error == .addressInUse
                            ? ": another process (a second proxyd?) holds port \(endpoint.port); stop it, or change metrics_listen"
                            : ""))
            }
            logger.info("metrics listening", metadata: ["address": "\(endpoint)", "path": "/metrics"])
        }
    }

    /// Closes the control socket (removing its file) and the metrics endpoint.
    func stopControlPlane() {
        controlServer?.close()
        controlServer = nil
        metricsServer?.close()
        metricsServer = nil
    }

    func controlSocketPath(_ policy: Policy) -> String {
        controlSocketOverride ?? policy.daemon.controlSocket
    }

    /// One control request, on the daemon's queue.
    func handle(_ request: ControlRequest, credentials: Posix.PeerCredentials) -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        switch request.command {
        case .status:
            return ControlReply(ok: true, status: status())
        case .peers:
            return ControlReply(ok: true, peers: peers())
        case .reload:
            if let path = request.policy, !path.hasPrefix("/") {
                return .failure(ControlError(code: .badRequest, message: "policy '\(path)' must be an absolute path"))
            }
            logger.info(
                request.dryRun == true ? "control: dry-run reload" : "control: reloading",
                metadata: ["policy": "\(request.policy ?? policyPath)", "uid": "\(credentials.uid)", "pid": "\(credentials.pid)"])
            switch reload(from: request.policy, dryRun: request.dryRun ?? false) {
            case .success(let report): return ControlReply(ok: true, reload: report)
            case .failure(let error): return .failure(error)
            }
        case .audit: return audit()
        case .explain: return explain(request)
        case .kick: return kick(request, credentials: credentials)
        case .bans: return bans()
        case .unban: return unban(request, credentials: credentials)
        case .listeners: return listeners()
        }
    }

    /// Every guard's status, in policy order, with counters carried across reloads: relay and
    /// broker guards from their snapshots, firewall and host guards from the kernel's counters.
    func status() -> DaemonStatus {
        dispatchPrecondition(condition: .onQueue(queue))
        let guards = guardStatuses()
        return DaemonStatus(
            pid: getpid(), policy: policyPath, uptimeSeconds: (ContinuousClock.now - startedAt).inSeconds,
            table: policy?.firewall.table ?? "", fenceApplied: policy?.firewall.apply ?? false,
            reloadsApplied: reloadsApplied, reloadsRefused: reloadsRefused, guards: guards,
            bans: banCount(), kicks: kicks, bansIssued: bansIssued,
            discovery: discovery.status(direct: guards.compactMap(\.directConnections).reduce(0, +)),
            descriptors: DescriptorBudget.status(), names: peerNameStatuses())
    }

    /// Every guard of the policy in force, in policy order.
    func guardStatuses() -> [GuardStatus] {
        guard let policy else { return [] }
        let counters = policy.firewall.apply ? (try? firewall.counters(table: policy.firewall.table)) ?? [:] : [:]
        let fromPolicy = policy.guards.map { item in
            var status: GuardStatus
            if let running = roster.guards[item.name] {
                status = guardStatus(running.snapshot())
            } else {
                status = GuardStatus(
                    name: item.name, kind: GuardKind(rawValue: item.kind.rawValue) ?? .firewall, port: item.ports.first ?? 0, listenPort: 0,
                    state: .kernel, upstream: .init(state: .none, address: nil), connections: 0, maxConnections: 0,
                    queuedMessages: 0, queuedBytes: 0, counters: GuardCounters(), ports: item.ports)
            }
            status.mode = item.mode == .audit ? .audit : .enforce
            if case .host(let settings) = item.settings { status.publicPorts = settings.publicPorts }
            status.fenceRefused = counters[NameScheme.refusedCounter(item.name)] ?? 0
            status.fenceAudited = counters[NameScheme.auditedCounter(item.name)] ?? 0
            return status
        }
        return fromPolicy + runtimeGuards.compactMap { name in
            roster.guards[name].map { running in
                var status = guardStatus(running.snapshot())
                status.directConnections = discovery.directCount(broker: name)
                return status
            }
        }
    }

    /// Every live connection of every guard.
    func peers() -> [ConnectionStatus] {
        dispatchPrecondition(condition: .onQueue(queue))
        return orderedServices().flatMap { $0.snapshot().connections }
    }

    /// The guard's status with the counters of the guards it replaced added in.
    func guardStatus(_ snapshot: GuardSnapshot) -> GuardStatus {
        var status = snapshot.status
        if let base = roster.retired[status.name] { status.counters = base + status.counters }
        return status
    }

    /// The running guards: the policy's in policy order, then those started while running.
    func orderedServices() -> [any RingfenceGuard.Guard] {
        ((policy?.guards ?? []).map(\.name) + runtimeGuards).compactMap { roster.guards[$0] }
    }

    func metricsText() -> String {
        dispatchPrecondition(condition: .onQueue(queue))
        var snapshots: [GuardSnapshot] = []
        for service in orderedServices() {
            var snapshot = service.snapshot()
            snapshot.status = guardStatus(snapshot)
            snapshots.append(snapshot)
        }
        return metrics.render(guards: snapshots, fence: MetricsExposition.Fence(guards: guardStatuses(), bans: banCount(), names: peerNameStatuses() ?? []))
    }

    /// READY=1 with a status line, and the watchdog's timer if systemd asked for one.
    func notifyReady() {
        guard let notifier else { return }
        let count = roster.guards.count
        try? notifier.ready(status: "serving \(count) guard\(count == 1 ? "" : "s")")
        if watchdog == nil, let interval = notifier.watchdogPingInterval {
            // Pinged from the daemon's queue: a queue stuck in a reload or a deadlock stops the pings.
            watchdog = queue.repeatingTimer(every: interval) { try? notifier.watchdog() }
        }
    }
}

extension DaemonError {
    /// The reply a refused reload gets: the policy's problems one per line, or what failed.
    func controlError(policy path: String) -> ControlError {
        switch self {
        case .policy(let error):
            return ControlError(
                code: .policyRefused, message: "\(path): policy refused; the policy in force stays",
                details: error.diagnostics.map { "\($0)" })
        case .firewall, .guardFailed, .controlPlane:
            return ControlError(
                code: .reloadRefused, message: "reload refused; the policy in force stays", details: [description])
        }
    }
}
