import Dispatch
import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceControl
import RingfenceIO
import RingfencePolicy
import RingfenceSockets
import SystemPackage

/// A running `kind = "tcp"` guard: listeners on the listen port (IPv4 and IPv6), admission at
/// accept, and a relay session per admitted connection to the connection's original
/// destination (SO_ORIGINAL_DST, after the kernel's redirect) or to the policy's `upstream`.
public final class RelayGuard: @unchecked Sendable {
    /// The guard as last started or updated. Only changed on the daemon's queue.
    public private(set) var spec: Guard
    private var settings: RelaySettings
    private let group: EventLoopGroup
    private let context: RelayContext
    private let denials: DenialLog
    private let logger: Logger
    private var listeners: [Listener] = []
    private var timers: [any DispatchSourceTimer] = []
    /// The last session id given; only touched on the accept loop.
    private var nextID: UInt64 = 0
    private var fixedUpstream: SocketAddress?

    /// - Throws: `RelayError` when the guard is not a relay guard or its upstream cannot be resolved.
    public init(_ spec: Guard, group: EventLoopGroup, logger: Logger) throws(RelayError) {
        guard case .relay(let settings) = spec.settings else { throw .notARelay(spec.name) }
        self.spec = spec
        self.settings = settings
        self.group = group
        self.logger = logger
        let admission = Admission(allow: spec.allow, limits: Self.admissionLimits(settings))
        admission.audit = spec.mode == .audit
        context = RelayContext(
            guardName: spec.name, settings: settings, admission: admission, logger: logger, loops: group.loops.count)
        denials = DenialLog(logger: logger, guardName: spec.name)
        if let upstream = settings.upstream {
            fixedUpstream = try Self.resolve(upstream)
        }
    }

    /// Binds the listen port on all IPv4 and IPv6 addresses and starts accepting. An IPv6
    /// listener that cannot bind because the host has no IPv6 is skipped with a warning.
    /// - Throws: `RelayError.listen` when the port cannot be bound (in use, no permission).
    public func start() throws(RelayError) {
        let acceptLoop = group.loops[0]
        do throws(ListenFailure) {
            // Weak: an accept or timer event may still be running on a loop when the daemon lets go.
            let made = try Listener.anyAddress(
                port: settings.listenPort, loop: acceptLoop,
                onError: { [weak self] error in self?.denials.recordAcceptFailure(error: "\(error)") }
            ) { [weak self] fd, peer in
                guard let self else {
                    return Posix.close(fd, reset: true)
                }
                accepted(fd: fd, peer: peer)
            }
            listeners = made.listeners
            if !made.ipv6 {
                logger.warning("no IPv6 on this host: relay listens on IPv4 only", metadata: ["guard": "\(spec.name)"])
            }
        } catch {
            stop()
            throw .listen(spec.name, error.address, error.error)
        }
        for loop in group.loops {
            let timer = loop.repeatingTimer(every: .milliseconds(200)) { [context] in
                let now = ContinuousClock.now
                for session in context.sessions(on: loop) { session.checkDeadlines(now: now) }
            }
            timers.append(timer)
        }
        timers.append(acceptLoop.repeatingTimer(every: .seconds(5)) { [denials, context] in
            denials.flush()
            context.admission.prune()
        })
        logger.info(
            "relay listening",
            metadata: [
                "guard": "\(spec.name)", "port": "\(settings.listenPort)", "guarded_port": "\(spec.ports[0])",
                "protocol": "\(settings.appProtocol.rawValue)",
                "upstream": "\(fixedUpstream.map { "\($0)" } ?? "original destination")",
            ])
    }

    /// Stops accepting and closes every live session (with a reset). Returns at once; the
    /// sessions close on their loops.
    public func stop() {
        for listener in listeners { listener.close() }
        listeners = []
        for timer in timers { timer.cancel() }
        timers = []
        denials.flush()
        for loop in group.loops {
            loop.execute { [context] in
                for session in context.sessions(on: loop) { session.close(.shutdown) }
            }
        }
    }

    /// Whether `update` can take `next` on in place (`Guard.canBeUpdatedInPlace`).
    public func canUpdate(to next: Guard) -> Bool {
        next.canBeUpdatedInPlace(from: spec)
    }

    /// Swaps the allowlist and settings in place and closes the live connections of peers the
    /// allowlist no longer admits (the kernel fence cuts them too); every other connection
    /// carries on. Caps and rates apply to the next accepts, timeouts at the next sweep, buffers,
    /// gate limits and `busy_poll` to new connections. On the daemon's queue; returns once done.
    /// - Returns: the connections closed.
    public func update(to next: Guard) -> [ReloadReport.Cut] {
        precondition(canUpdate(to: next))
        guard case .relay(let nextSettings) = next.settings else { return [] }
        spec = next
        settings = nextSettings
        context.admission.allow = next.allow
        context.admission.audit = next.mode == .audit
        context.admission.limits = Self.admissionLimits(nextSettings)
        context.settings = nextSettings
        return close(.notAllowed, reason: "not-allowed") { !next.admits($0) }
    }

    /// Closes the live connections of peers in `block` (`proxyctl kick`). Returns once done.
    public func kick(_ block: AddressSet) -> [ReloadReport.Cut] {
        close(.kicked, reason: "kicked") { block.contains($0) }
    }

    /// Closes, loop by loop, the sessions whose peer address `matches`, and lists them.
    private func close(
        _ ending: RelaySession.Ending, reason: String, where matches: @escaping @Sendable (IPAddress) -> Bool
    ) -> [ReloadReport.Cut] {
        var cut: [ReloadReport.Cut] = []
        for loop in group.loops {
            cut += loop.queue.sync { [context] in
                let now = ContinuousClock.now
                var closed: [ReloadReport.Cut] = []
                for session in context.sessions(on: loop) where matches(session.peer.address) {
                    closed.append(ReloadReport.Cut(session.status(now: now), reason: reason))
                    session.close(ending)
                }
                return closed
            }
        }
        return cut.sorted { $0.id < $1.id }
    }

    /// The guard's status and its connections, taken loop by loop. Returns once done.
    public func snapshot() -> GuardSnapshot {
        var counters = GuardCounters()
        var connections: [ConnectionStatus] = []
        for loop in group.loops {
            let (totals, live) = loop.queue.sync { [context] in context.snapshot(on: loop, now: .now) }
            counters = counters + totals
            connections += live
        }
        let totals = context.admission.totals
        counters.accepted = totals.accepted
        counters.denied = Dictionary(uniqueKeysWithValues: totals.denied.map { ($0.key.rawValue, $0.value) })
        let status = GuardStatus(
            name: spec.name, kind: spec.kind.rawValue, port: spec.ports[0], listenPort: settings.listenPort,
            state: listeners.isEmpty ? "stopped" : "running",
            upstream: .init(
                state: "per-connection",
                address: fixedUpstream.map { "\($0)" } ?? "original destination"),
            connections: connections.count, maxConnections: settings.maxConnections, queuedMessages: 0,
            queuedBytes: 0, counters: counters)
        return GuardSnapshot(status: status, connections: connections.sorted { $0.id < $1.id })
    }

    static func admissionLimits(_ settings: RelaySettings) -> Admission.Limits {
        .init(
            maxConnections: settings.maxConnections, maxConnectionsPerPeer: settings.maxConnectionsPerPeer,
            acceptRatePerPeer: settings.acceptRatePerPeer)
    }

    /// On the accept loop: admission, the upstream, then the session on the next loop.
    private func accepted(fd: Int32, peer: SocketAddress) {
        let admission = context.admission
        guard admission.admit(fd, from: peer, denials: denials),
            let upstream = admission.destination(
                of: fd, from: peer, fixed: fixedUpstream, listenPort: settings.listenPort, logger: logger,
                guardName: spec.name)
        else { return }
        nextID += 1
        let loop = group.next()
        let session = RelaySession(
            id: nextID, clientFD: fd, peer: peer, upstream: upstream, loop: loop, context: context)
        loop.execute { [context] in
            context.sessionStarted(session)
            session.start()
        }
    }

    /// Resolves `upstream` once, at start (getaddrinfo blocks; never on a loop).
    private static func resolve(_ endpoint: Endpoint) throws(RelayError) -> SocketAddress {
        guard let address = Posix.resolve(host: endpoint.host, port: endpoint.port) else {
            throw .unresolvable(endpoint.description)
        }
        return address
    }
}
