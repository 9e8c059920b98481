import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus

/// The broker's part behind the guard front end: subscriber sessions, the upstream link and
/// the fan-out, all on the guard's one loop, which also accepts.
final class BrokerSessions: GuardSessions, @unchecked Sendable {
    let loop: EventLoop
    let broker: Broker
    private let guardName: String
    private let port: UInt16
    private let listenPort: UInt16
    private let logger: Logger
    /// The last session id given; only touched on the loop.
    private var nextID: UInt64 = 0

    init(_ settings: BrokerGuardSettings, admission: Admission, logger: Logger) {
        guardName = settings.frontEnd.name
        port = settings.frontEnd.port
        listenPort = settings.frontEnd.listenPort
        self.logger = logger
        // A loop of its own (a serial queue, not a thread): the upstream link's `busy_poll`
        // sleeps on the engine's socket in turns of up to 250 µs, which no other guard's
        // connections should wait behind.
        loop = EventLoop(index: 0, label: "ringfence.broker.\(guardName)")
        broker = Broker(loop: loop, guardName: guardName, logger: logger, admission: admission, limits: settings.broker)
    }

    var acceptLoop: EventLoop { loop }
    var loops: [EventLoop] { [loop] }

    /// With a fixed upstream, connects to it at once.
    func started(upstream: SocketAddress?) {
        if let upstream {
            loop.execute { [broker] in broker.upstream.connect(to: upstream) }
        }
        let limits = broker.limits
        logger.info(
            "broker listening",
            metadata: [
                "guard": "\(guardName)", "port": "\(listenPort)", "guarded_port": "\(port)",
                "upstream": "\(upstream.map { "\($0)" } ?? "original destination")",
                "hwm_messages": "\(limits.hwmMessages)", "hwm_bytes": "\(limits.hwmBytes)",
                "on_overflow": "\(limits.onOverflow.rawValue)", "max_stall": "\(limits.maxStall)",
            ])
    }

    /// On the loop: the upstream's address from the first subscriber (unless fixed), then the
    /// subscriber's handshake.
    func admitted(_ socket: consuming Socket, peer: SocketAddress, destination: SocketAddress) {
        if broker.upstream.address == nil { broker.upstream.connect(to: destination) }
        nextID += 1
        Posix.setNoDelay(socket.fd)
        let session = SubscriberSession(id: nextID, socket: socket, peer: peer, loop: loop, limits: broker.limits)
        broker.add(session)
        logger.debug("subscriber admitted", metadata: ["guard": "\(guardName)", "peer": "\(peer.address)"])
    }

    /// Closes, on the loop, the subscribers whose peer address `matches`, and lists them.
    func close(for reason: CutReason, where matches: @escaping @Sendable (IPAddress) -> Bool) -> [ReloadReport.Cut] {
        let byReload = reason == .notAllowed
        let log = byReload ? "no longer allowed by the policy" : "kicked by proxyctl"
        return loop.queue.sync { [broker, guardName] in
            var cut: [ReloadReport.Cut] = []
            for session in broker.subscribers.values where matches(session.peer.address) {
                cut.append(ReloadReport.Cut(session.status(guardName: guardName, now: .now), reason: reason))
                if byReload { broker.counters.cutByReload += 1 }
                broker.remove(session, reason: log, level: .warning)
            }
            return cut.sorted { $0.id < $1.id }
        }
    }

    func sweep(on loop: EventLoop, now: ContinuousClock.Instant) {
        broker.checkDeadlines(now: now)
    }

    func housekeeping() {
        broker.logDrops()
        broker.logHolds()
    }

    func snapshot(base: GuardStatus) -> GuardSnapshot {
        loop.queue.sync { [broker] in broker.snapshot(base: base) }
    }

    /// Closes every subscriber and the upstream link. Returns at once.
    func shutdown() {
        loop.execute { [broker] in broker.shutdown() }
    }

    /// New limits, for the upstream link and every subscriber at once. Returns once taken.
    func update(limits: BrokerLimits) {
        loop.queue.sync { [broker] in broker.update(limits: limits) }
    }
}
