import Dispatch
import Logging
import Synchronization
import RingfenceAddresses
import RingfenceAdmission
import RingfenceIO
import RingfenceSockets
import RingfenceStatus

/// The one front end of every guard that carries traffic: listeners on the listen port (IPv4
/// and IPv6, any address), admission at accept, the denial log, the redirect check, the deadline
/// sweep and housekeeping timers, update in place and the guard-wide half of snapshots. What a
/// kind does with an admitted connection is `Sessions`' business (`GuardSessions`).
///
/// **The redirect check**, on every accepted connection of every kind, after admission: the
/// connection must carry an original destination (SO_ORIGINAL_DST, set by the kernel's
/// redirect) whose port is not the listen port itself; otherwise it is reset, its admission
/// released and a warning logged. This holds with a fixed `upstream` too — the upstream only
/// says where an admitted connection goes, not whether it came through the redirect — so the
/// listen port refuses anything that reached it directly, as docs/relay.md and docs/broker.md promise. (Before, the
/// broker checked only its first subscriber and nothing with a fixed upstream, and the relay
/// nothing with a fixed upstream but that it was not its own listen port.)
///
/// Threading: accepting and the housekeeping timer run on `sessions.acceptLoop`, each sweep on
/// its loop; `settings`, `start`, `update`, `kick`, `snapshot` and `stop` belong to the
/// daemon's queue.
public final class GuardFrontEnd<Sessions: GuardSessions>: @unchecked Sendable {
    /// The settings as last started or updated. Only changed on the daemon's queue.
    public private(set) var settings: FrontEndSettings
    public let admission: Admission
    public let denials: DenialLog
    public let sessions: Sessions
    /// The fixed upstream, resolved once at init (getaddrinfo blocks; never on a loop).
    public let fixedUpstream: SocketAddress?
    private let name: String
    /// The port listened on: the settings' own, or for 0 the one the kernel picked at `start`.
    /// Read on the accept loop, set once by `start`.
    private let boundPort: Atomic<UInt16>
    public var listenPort: UInt16 { boundPort.load(ordering: .relaxed) }
    private let logger: Logger
    private let originalDestination: OriginalDestination
    private var listeners: [Listener] = []
    private var timers: [any DispatchSourceTimer] = []

    /// - Parameters:
    ///   - originalDestination: reads a socket's original destination (socket, family); a
    ///     test seam, as loopback connections in unit tests carry none. Default: SO_ORIGINAL_DST.
    ///   - makeSessions: the kind's sessions, given the admission they release places to.
    /// - Throws: `GuardError.unresolvable` when the fixed upstream does not resolve.
    public init(
        _ settings: FrontEndSettings, logger: Logger,
        originalDestination: @escaping OriginalDestination = kernelOriginalDestination,
        sessions makeSessions: (Admission) -> Sessions
    ) throws(GuardError) {
        self.settings = settings
        self.logger = logger
        self.originalDestination = originalDestination
        name = settings.name
        boundPort = Atomic(settings.listenPort)
        admission = Admission(allow: settings.allow, limits: settings.limits)
        admission.audit = settings.mode == .audit
        sessions = makeSessions(admission)
        denials = DenialLog(logger: logger, guardName: settings.name)
        if let upstream = settings.upstream {
            guard let address = Posix.resolve(host: upstream.host, port: upstream.port) else {
                throw .unresolvable(kind: settings.kind, upstream.description)
            }
            fixedUpstream = address
        } else {
            fixedUpstream = nil
        }
    }

    /// Whether the listeners are open.
    public var isRunning: Bool { !listeners.isEmpty }

    /// Binds the listen port on all IPv4 and IPv6 addresses, starts accepting and the timers,
    /// then tells the sessions. An IPv6 listener that cannot bind because the host has no IPv6
    /// is skipped with a warning.
    /// - Throws: `GuardError.listen` when the port cannot be bound (in use, no permission).
    public func start() throws(GuardError) {
        let acceptLoop = sessions.acceptLoop
        do throws(ListenFailure) {
            // Weak: an accept or timer event may still be running on a loop when the daemon lets go.
            let made = try Listener.anyAddress(
                port: listenPort, loop: acceptLoop,
                onError: { [weak self] error in self?.denials.recordAcceptFailure(error: "\(error)") }
            ) { [weak self] socket, peer in
                guard let self else {
                    return socket.close(reset: true)
                }
                accepted(socket, peer: peer)
            }
            listeners = made.listeners
            if let port = made.listeners.first?.address.port { boundPort.store(port, ordering: .relaxed) }
            if !made.ipv6 {
                let what = settings.kind == .zmqXPUB ? "broker" : "relay"
                logger.warning("no IPv6 on this host: \(what) listens on IPv4 only", metadata: ["guard": "\(settings.name)"])
            }
        } catch {
            stop()
            throw .listen(guardName: settings.name, kind: settings.kind, error.address, error.error)
        }
        for loop in sessions.loops {
            timers.append(loop.repeatingTimer(every: .milliseconds(200)) { [sessions] in
                sessions.sweep(on: loop, now: .now)
            })
        }
        timers.append(acceptLoop.repeatingTimer(every: .seconds(5)) { [denials, admission, sessions] in
            denials.flush()
            admission.prune()
            sessions.housekeeping()
        })
        sessions.started(upstream: fixedUpstream)
    }

    /// Stops accepting and the timers, and has the sessions close. Returns at once.
    public func stop() {
        for listener in listeners { listener.close() }
        listeners = []
        for timer in timers { timer.cancel() }
        timers = []
        denials.flush()
        sessions.shutdown()
    }

    /// Swaps the allowlist, mode, caps and rate in place (for the next accepts) and closes the
    /// live sessions of peers `next` no longer admits (`FrontEndSettings.cuts`, the rule a dry
    /// run uses too). Returns the sessions closed, once closed.
    public func update(to next: FrontEndSettings) -> [ReloadReport.Cut] {
        precondition(next.canBeUpdatedInPlace(from: settings))
        settings = next
        admission.allow = next.allow
        admission.audit = next.mode == .audit
        admission.limits = next.limits
        return sessions.close(for: .notAllowed) { next.cuts($0) }
    }

    /// Closes the live sessions of peers in `block` (`proxyctl kick`). Returns once done.
    public func kick(_ block: AddressSet) -> [ReloadReport.Cut] {
        sessions.close(for: .kicked) { block.contains($0) }
    }

    /// The guard's status and its live connections: the front end's part (name, ports, state,
    /// admissions and refusals), the sessions' part filled in by them.
    public func snapshot() -> GuardSnapshot {
        let totals = admission.totals
        let base = GuardStatus(
            name: settings.name, kind: settings.kind, port: settings.port, listenPort: listenPort,
            state: isRunning ? .running : .stopped, upstream: .init(state: .idle, address: nil), connections: 0,
            maxConnections: settings.limits.maxConnections, queuedMessages: 0, queuedBytes: 0,
            counters: GuardCounters(), mode: settings.mode)
        var snapshot = sessions.snapshot(base: base)
        snapshot.status.counters.accepted = totals.accepted
        snapshot.status.counters.denied = Dictionary(
            uniqueKeysWithValues: totals.denied.map { ($0.key.rawValue, $0.value) })
        snapshot.status.counters.banned = admission.bansReported
        return snapshot
    }

    /// On the accept loop: admission, the redirect check, then the sessions.
    /// Every refusal resets and closes the socket here or in `admit`; an admitted one is the
    /// sessions' to close.
    private func accepted(_ socket: consuming Socket, peer: SocketAddress) {
        guard let socket = admission.admit(socket, from: peer, denials: denials) else { return }
        guard let original = originalDestination(socket, peer.family), original.port != listenPort else {
            socket.close(reset: true)
            admission.release(peer.address)
            logger.warning(
                "connection without an original destination closed (not redirected?)",
                metadata: ["guard": "\(name)", "peer": "\(peer.address)"])
            return
        }
        sessions.admitted(socket, peer: peer, destination: fixedUpstream ?? original)
    }
}
