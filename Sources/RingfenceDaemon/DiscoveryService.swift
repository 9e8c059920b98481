import Dispatch
import Logging
import RingfenceAddresses
import RingfenceDiscovery
import RingfenceFirewall
import RingfenceListeners
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus

#if canImport(Glibc)
import Glibc
#endif

/// Discovery in the running daemon (docs/discovery.md): every TCP listener that appears in this
/// namespace is offered to the policy's discover guards; a candidate's port is held in the
/// kernel (new connections from other hosts wait) while the probe classifies it off the queue;
/// an XPUB gets its own broker, started as a run-time guard named `GUARD/ADDRESS:PORT`, and the
/// kernel's redirect to it; anything else is released to the fences it had. A listener that
/// closes takes its broker and its kernel elements with it.
///
/// Confined to the daemon's queue, like the rest of the daemon's state (hence unchecked
/// Sendable: the watch and the probes call back through that queue).
final class DiscoveryService: @unchecked Sendable {
    /// Where a listener is in discovery.
    enum Phase {
        /// Not a candidate (own, loopback, a named port, no discover guard matched).
        case skipped(CandidateFilter.Decision)
        /// Held in the kernel while the probe runs.
        case probing(guardName: String)
        /// Probed: not an XPUB (or brokering failed); left to the kernel fences.
        case classified(guardName: String, ProbeVerdict)
        /// An XPUB with its broker and redirect.
        case brokered(guardName: String, broker: String, listenPort: UInt16, ProbeVerdict)
    }

    struct Entry {
        var socket: ListeningSocket
        var owner: SocketOwner?
        var phase: Phase
        /// When the watch reported it: the start of the time to a live redirect.
        var noticed: ContinuousClock.Instant
        /// The same moment on CLOCK_MONOTONIC, in nanoseconds, for lining the log up with other
        /// processes' clocks (the discovery benchmark measures listen(2) → noticed with it).
        var noticedMonotonicNs: UInt64 = DiscoveryService.monotonicNanoseconds()
        /// When its port was held, and when the probe's verdict arrived (for the log's breakdown).
        var held: ContinuousClock.Instant?
        var probed: ContinuousClock.Instant?
    }

    /// CLOCK_MONOTONIC now, in nanoseconds.
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Milliseconds from `start` to `end`, two decimals, for the log.
    private static func ms(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant?) -> String {
        guard let end else { return "?" }
        return "\(((end - start).inSeconds * 1e5).rounded() / 100)"
    }

    /// A silent listener is given up on after this long; its remote clients wait that long at
    /// most (docs/discovery.md §2).
    static let probeDeadline = Duration.milliseconds(100)

    unowned let daemon: Daemon
    var logger: Logger { daemon.logger }
    private(set) var entries: [ListeningSocket: Entry] = [:]
    private var watch: ListenerWatch?
    private(set) var method: WatchMethod?
    private(set) var fallbackReason: String?
    private var pollInterval = Duration.milliseconds(10)
    private(set) var discovered: UInt64 = 0
    private(set) var probed: UInt64 = 0
    private(set) var rules: [CandidateFilter.Rule] = []
    /// During the start-up scan only: `carriedOver()`.
    private(set) var carried: [String: CarriedPorts] = [:]
    private let probes = DispatchQueue(label: "ringfence.discovery.probe", attributes: .concurrent)

    init(daemon: Daemon) {
        self.daemon = daemon
    }

    // MARK: - Following the policy

    /// Brings discovery in line with `policy`, after a start or an applied reload: starts or
    /// stops the watch, retires the brokers of discover guards that went, updates the others'
    /// allowlists and limits in place, puts their kernel elements back (a table replaced at a
    /// reload loses them), and offers the listeners not yet taken to the new rules.
    /// - Returns: the connections of discovered XPUBs' brokers closed because the policy no
    ///   longer admits their peers (for the reload's report).
    @discardableResult
    func follow(_ policy: Policy) -> [ReloadReport.Cut] {
        var cut: [ReloadReport.Cut] = []
        let specs = policy.guards.filter(\.discovers)
        rules = specs.compactMap { spec in
            guard case .broker(let settings) = spec.settings else { return nil }
            return CandidateFilter.Rule(guardName: spec.name, process: settings.process)
        }
        for (key, entry) in entries {
            switch entry.phase {
            case .brokered(let name, let broker, let listen, let verdict):
                if let spec = specs.first(where: { $0.name == name }), decide(entry) == .probe(guardName: name) {
                    cut += refresh(broker: broker, spec: spec, entry: entry)
                    kernel(name, [.divert(entry.socket.port, to: listen)])
                } else {
                    cut += retireBroker(
                        entry, "discovered XPUB's broker retired",
                        why: "its discover guard is no longer in the policy, or no longer takes it")
                    entries[key]?.phase = .classified(guardName: name, verdict)
                }
            default:
                break
            }
        }
        guard !rules.isEmpty else {
            stopWatch()
            entries = [:]
            return cut
        }
        if watch == nil { startWatch(policy) }
        for (key, entry) in entries {
            switch entry.phase {
            case .skipped, .classified: consider(key)
            case .probing, .brokered: break
            }
        }
        return cut
    }

    /// Stops the watch and retires every broker (shutdown).
    func stop() {
        stopWatch()
        for entry in entries.values {
            if case .brokered(_, let broker, _, _) = entry.phase { daemon.retireGuard(named: broker) }
        }
        entries = [:]
    }

    private func startWatch(_ policy: Policy) {
        let watch = ListenerWatch(
            prefer: policy.daemon.listenerWatch == .polling ? .polling : .tracepoint,
            pollInterval: policy.daemon.listenerPollInterval, queue: daemon.queue
        ) { [weak self] events in
            self?.handle(events)
        }
        do throws(ListenerError) {
            method = try watch.start()
        } catch {
            logger.error(
                "discovery cannot watch listeners; discover guards broker nothing (their ports stay fenced by the host guard, if any)",
                metadata: ["error": "\(error)"])
            return
        }
        pollInterval = policy.daemon.listenerPollInterval
        fallbackReason = watch.fallbackReason
        self.watch = watch
        var metadata: Logger.Metadata = ["method": "\(method?.rawValue ?? "?")"]
        if let reason = fallbackReason { metadata["why_not_tracepoint"] = "\(reason)" }
        if method == .polling { metadata["interval_ms"] = "\(pollInterval.inSeconds * 1e3)" }
        logger.info("discovery watching listeners", metadata: metadata)
        if method == .polling {
            logger.warning(
                "discovery is polling: a reader that connects within the poll interval of listen(2) can reach the engine before its broker; status and `proxyctl listeners` count such direct readers",
                metadata: ["interval_ms": "\(pollInterval.inSeconds * 1e3)"])
        }
        let present: [ListeningSocket]
        do throws(ListenerError) {
            present = try SocketListing.listeners()
        } catch {
            logger.error("discovery cannot list the listeners present at start", metadata: ["error": "\(error)"])
            return
        }
        carried = carriedOver()
        let owners = ProcessTable.owners(of: Set(present.map(\.inode)))
        handle(present.map { .appeared($0, owner: owners[$0.inode]) })
        releaseUnclaimed()
        carried = [:]
    }

    private func stopWatch() {
        watch?.stop()
        watch = nil
        method = nil
        fallbackReason = nil
    }

    // MARK: - Events

    private func handle(_ events: [ListenerEvent]) {
        dispatchPrecondition(condition: .onQueue(daemon.queue))
        guard watch != nil else { return }
        for event in events {
            switch event {
            case .appeared(let socket, let owner):
                guard entries[socket] == nil else { continue }
                entries[socket] = Entry(socket: socket, owner: owner, phase: .skipped(.unmatched), noticed: .now)
                consider(socket)
            case .disappeared(let socket):
                guard let entry = entries.removeValue(forKey: socket) else { continue }
                gone(entry)
            }
        }
    }

    private func decide(_ entry: Entry) -> CandidateFilter.Decision {
        let policy = daemon.policy
        var named: [UInt16: String] = [:]
        for spec in policy?.guards ?? [] where spec.kind != .host && !spec.discovers {
            for port in spec.ports { named[port] = spec.name }
        }
        // proxyd's own ports matter only when the owner is unknown; asking every guard for its
        // port costs a hop to each guard's loop, on the way to a live redirect.
        let ownPorts = entry.owner == nil ? daemon.ownListenPorts() : []
        let filter = CandidateFilter(ownPID: getpid(), ownPorts: ownPorts, namedPorts: named, rules: rules)
        return filter.decide(
            address: entry.socket.address, port: entry.socket.port, pid: entry.owner?.pid,
            commandLine: entry.owner?.commandLine)
    }

    /// Offers a listener to the discover guards: a candidate is held and probed (or, already
    /// classified as something else, just recorded under its new guard).
    private func consider(_ key: ListeningSocket) {
        guard let entry = entries[key] else { return }
        let decision = decide(entry)
        guard case .probe(let name) = decision else {
            entries[key]?.phase = .skipped(decision)
            return
        }
        if case .classified(_, let verdict) = entry.phase, !verdict.isXPUB {
            entries[key]?.phase = .classified(guardName: name, verdict)
            return
        }
        entries[key]?.phase = .probing(guardName: name)
        // A port still redirected from before a restart stays so while it is probed: its
        // clients are refused and retry at once (libzmq: 100 ms), where a hold would drop their
        // SYN and leave them to TCP's retry a second later (docs/reliability.md).
        if carried[name]?.diverted.remove(key.port) == nil { kernel(name, [.hold(key.port)]) }
        entries[key]?.held = .now
        let target = SocketAddress(address: CandidateFilter.target(of: key.address), port: key.port)
        probes.async { [weak self, queue = daemon.queue] in
            let verdict = ZMTPProbe.classify(
                target, deadline: DiscoveryService.probeDeadline,
                // A listing that fails counts as accepted: the probe's silence then stands.
                queued: { (try? SocketListing.awaitsAccept(listenerPort: key.port, clientPort: $0)) ?? false })
            queue.async { [weak self] in self?.classified(key, verdict) }
        }
    }

    private func classified(_ key: ListeningSocket, _ verdict: ProbeVerdict) {
        probed += 1
        entries[key]?.probed = .now
        guard let entry = entries[key], case .probing(let name) = entry.phase else { return }
        guard rules.contains(where: { $0.guardName == name }) else {
            entries[key]?.phase = .classified(guardName: name, verdict)
            return
        }
        guard verdict.isXPUB else {
            kernel(name, [.release(key.port, listen: nil)])
            entries[key]?.phase = .classified(guardName: name, verdict)
            logger.info(
                "listener is not a ZMTP XPUB; left to the kernel fence",
                metadata: [
                    "guard": "\(name)", "listener": "\(SocketAddress(address: key.address, port: key.port))",
                    "class": "\(verdict)", "pid": "\(entry.owner.map { "\($0.pid)" } ?? "?")",
                ])
            return
        }
        broker(entry, guardName: name, verdict: verdict)
    }

    /// Starts the XPUB's broker and turns the hold into the redirect to it.
    private func broker(_ entry: Entry, guardName: String, verdict: ProbeVerdict) {
        let key = entry.socket
        let name = CandidateFilter.brokerName(guardName: guardName, address: key.address, port: key.port)
        guard let spec = daemon.policy?.guards.first(where: { $0.name == guardName }),
            case .broker(let settings) = spec.settings
        else { return }
        // A broker of that name still running belongs to a listener on the same address and port
        // that closed unnoticed: this one replaces it.
        if let stale = entries.first(where: { other in
            if case .brokered(_, let broker, _, _) = other.value.phase { return broker == name && other.key != key }
            return false
        }) {
            entries.removeValue(forKey: stale.key)
            gone(stale.value)
        }
        do throws(DaemonError) {
            try daemon.startGuard(GuardSettingsMapping.discovered(spec, settings, name: name, listener: key))
        } catch {
            kernel(guardName, [.release(key.port, listen: nil)])
            entries[key]?.phase = .classified(guardName: guardName, verdict)
            logger.error(
                "could not broker a discovered XPUB; it stays behind the kernel fence only",
                metadata: ["guard": "\(name)", "error": "\(error)"])
            return
        }
        let started = ContinuousClock.now
        let listen = daemon.roster.guards[name]?.listenPort ?? 0
        guard kernel(guardName, [.divert(key.port, to: listen)]) else {
            daemon.retireGuard(named: name)
            kernel(guardName, [.release(key.port, listen: listen)])
            entries[key]?.phase = .classified(guardName: guardName, verdict)
            return
        }
        let live = ContinuousClock.now
        entries[key]?.phase = .brokered(guardName: guardName, broker: name, listenPort: listen, verdict)
        discovered += 1
        let direct = directConnections(to: key.port)
        logger.info(
            "XPUB discovered and brokered",
            metadata: [
                "guard": "\(name)", "listen_port": "\(listen)", "pid": "\(entry.owner.map { "\($0.pid)" } ?? "?")",
                "process": "\(entry.owner?.commandLine.prefix(240) ?? "?")",
                // From the watch's report: port held, probe answered, broker started, redirect live.
                "ms_held": "\(Self.ms(entry.noticed, entry.held))", "ms_probed": "\(Self.ms(entry.noticed, entry.probed))",
                "ms_started": "\(Self.ms(entry.noticed, started))", "ms_live": "\(Self.ms(entry.noticed, live))",
                "noticed_mono_ns": "\(entry.noticedMonotonicNs)",
                "direct": "\(direct.count)",
            ])
        warnDirect(name, direct)
    }

    /// Warns about readers connected straight to the engine: they are not brokered.
    private func warnDirect(_ name: String, _ direct: [EstablishedSocket]) {
        guard !direct.isEmpty else { return }
        logger.warning(
            "readers connected to the XPUB before its redirect was live: they are direct, not brokered",
            metadata: [
                "guard": "\(name)", "direct": "\(direct.count)",
                "peers": "\(direct.map { "\(SocketAddress(address: $0.remote, port: $0.remotePort))" }.joined(separator: ","))",
                "fix": "restart the engine after proxyd is up, or use the tracepoint (see docs/discovery.md §6)",
            ])
    }

    /// Connections to `port` from other hosts, straight to the engine (not through the broker,
    /// whose link comes from this host).
    func directConnections(to port: UInt16) -> [EstablishedSocket] {
        let established = (try? SocketListing.established(localPort: port)) ?? []
        return established.filter { !$0.remote.isLoopback && $0.remote != $0.local }
    }

    /// A listener went: its broker and kernel elements go with it.
    private func gone(_ entry: Entry) {
        switch entry.phase {
        case .brokered:
            retireBroker(entry, "discovered XPUB closed; its broker and redirect are gone")
        case .probing(let name):
            kernel(name, [.release(entry.socket.port, listen: nil)])
        case .skipped, .classified:
            break
        }
    }

    /// Retires a brokered listener's broker and takes its port out of the kernel's sets.
    /// - Returns: the broker's connections, closed.
    @discardableResult
    private func retireBroker(_ entry: Entry, _ message: Logger.Message, why: String? = nil) -> [ReloadReport.Cut] {
        guard case .brokered(let name, let broker, let listen, _) = entry.phase else { return [] }
        let cut = daemon.retireGuard(named: broker) ?? []
        kernel(name, [.release(entry.socket.port, listen: listen)])
        var metadata: Logger.Metadata = ["guard": "\(broker)"]
        if let why { metadata["why"] = "\(why)" }
        logger.info(message, metadata: metadata)
        return cut
    }

    /// Applies the broker's guard's new allowlist and limits in place (after a reload).
    private func refresh(broker: String, spec: RingfencePolicy.Guard, entry: Entry) -> [ReloadReport.Cut] {
        guard case .broker(let settings) = spec.settings, let running = daemon.roster.guards[broker] else { return [] }
        let cut = running.update(to: GuardSettingsMapping.discovered(spec, settings, name: broker, listener: entry.socket))
        if !cut.isEmpty { logger.info("discovered XPUB's broker updated", metadata: ["guard": "\(broker)", "cut": "\(cut.count)"]) }
        return cut
    }

    /// Changes a discover guard's kernel elements when proxyd manages the fence. Returns false
    /// (logged) when the kernel refused.
    @discardableResult
    func kernel(_ guardName: String, _ changes: [DiscoveryChange]) -> Bool {
        guard let policy = daemon.policy, policy.firewall.apply else { return true }
        do throws(FirewallError) {
            try daemon.firewall.change(table: policy.firewall.table, discoverGuard: guardName, changes)
            return true
        } catch {
            logger.error(
                "discovery could not change the kernel fence", metadata: ["guard": "\(guardName)", "error": "\(error)"])
            return false
        }
    }

    // MARK: - Reports

    /// Discovery's part of `status`; nil when no discover guard is in the policy.
    /// - Parameter direct: the direct connections of every discovered XPUB together (the guard
    ///   rows count them; `directCount(broker:)`).
    func status(direct: Int) -> DiscoveryStatus? {
        guard watch != nil || !rules.isEmpty else { return nil }
        var brokered = 0, other = 0
        for entry in entries.values {
            switch entry.phase {
            case .brokered: brokered += 1
            case .classified: other += 1
            default: break
            }
        }
        return DiscoveryStatus(
            method: method?.rawValue ?? "none", fallbackReason: fallbackReason,
            pollIntervalMs: method == .polling ? pollInterval.inSeconds * 1e3 : nil, brokered: brokered, otherListeners: other,
            directConnections: direct, discovered: discovered, probed: probed)
    }

    /// The ports discover guards cover in the kernel now (held while probing, or brokered), with
    /// the guard's name, for `explain`.
    func coveredPorts() -> [UInt16: String] {
        var ports: [UInt16: String] = [:]
        for entry in entries.values {
            switch entry.phase {
            case .probing(let name), .brokered(let name, _, _, _): ports[entry.socket.port] = name
            default: break
            }
        }
        return ports
    }

    /// The direct connections of the XPUB a discovered broker stands for; nil for other guards.
    func directCount(broker: String) -> Int? {
        for entry in entries.values {
            if case .brokered(_, let name, _, _) = entry.phase, name == broker {
                return directConnections(to: entry.socket.port).count
            }
        }
        return nil
    }
}
