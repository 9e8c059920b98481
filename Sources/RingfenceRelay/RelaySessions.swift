import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus

/// The relay's part behind the guard front end: a `RelaySession` per admitted connection,
/// spread over the loop group (the accept loop is the group's first), and their snapshots.
final class RelaySessions: GuardSessions, @unchecked Sendable {
    let context: RelayContext
    private let group: EventLoopGroup
    private let port: UInt16
    private let listenPort: UInt16
    /// The last session id given; only touched on the accept loop.
    private var nextID: UInt64 = 0
    /// What `proxyctl status` says of the upstream. Set at start, on the daemon's queue.
    private var upstreamDescription = "original destination"

    init(_ settings: RelayGuardSettings, admission: Admission, group: EventLoopGroup, logger: Logger) {
        self.group = group
        port = settings.frontEnd.port
        listenPort = settings.frontEnd.listenPort
        context = RelayContext(
            guardName: settings.frontEnd.name, limits: settings.relay, admission: admission,
            logger: logger, loops: group.loops.count)
    }

    var acceptLoop: EventLoop { group.loops[0] }
    var loops: [EventLoop] { group.loops }

    func started(upstream: SocketAddress?) {
        if let upstream { upstreamDescription = "\(upstream)" }
        context.logger.info(
            "relay listening",
            metadata: [
                "guard": "\(context.guardName)", "port": "\(listenPort)", "guarded_port": "\(port)",
                "protocol": "\(context.limits.appProtocol.rawValue)", "upstream": "\(upstreamDescription)",
            ])
    }

    /// On the accept loop: the session, started on the next loop.
    func admitted(_ socket: consuming Socket, peer: SocketAddress, destination: SocketAddress) {
        nextID += 1
        let loop = group.next()
        let session = RelaySession(
            id: nextID, client: socket, peer: peer, upstream: destination, loop: loop, context: context)
        loop.execute { [context] in
            context.sessionStarted(session)
            session.start()
        }
    }

    /// Closes, loop by loop, the sessions whose peer address `matches`, and lists them.
    func close(for reason: CutReason, where matches: @escaping @Sendable (IPAddress) -> Bool) -> [ReloadReport.Cut] {
        let ending: RelaySession.Ending = reason == .kicked ? .kicked : .notAllowed
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

    func sweep(on loop: EventLoop, now: ContinuousClock.Instant) {
        let limits = context.limits
        for session in context.sessions(on: loop) { session.checkDeadlines(now: now, settings: limits) }
    }

    /// Every 5 s: each loop releases the pipes and buffers its pools did not need since the last round.
    func housekeeping() {
        for loop in group.loops {
            loop.execute { [context] in context.trimPools(on: loop) }
        }
    }

    /// The guard's counters and connections, taken loop by loop.
    func snapshot(base: GuardStatus) -> GuardSnapshot {
        var counters = GuardCounters()
        var connections: [ConnectionStatus] = []
        for loop in group.loops {
            let (totals, live) = loop.queue.sync { [context] in context.snapshot(on: loop, now: .now) }
            counters = counters + totals
            connections += live
        }
        var status = base
        status.upstream = .init(state: .perConnection, address: upstreamDescription)
        status.connections = connections.count
        status.counters = counters
        return GuardSnapshot(status: status, connections: connections.sorted { $0.id < $1.id })
    }

    /// Closes every live session (with a reset), each on its loop. Returns at once.
    func shutdown() {
        for loop in group.loops {
            loop.execute { [context] in
                for session in context.sessions(on: loop) { session.close(.shutdown) }
                context.trimPools(on: loop, all: true)
            }
        }
    }
}
