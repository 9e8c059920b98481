import Dispatch
import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceControl
import RingfenceIO
import RingfencePolicy
import RingfenceSockets
import SystemPackage

/// A running `kind = "zmq-xpub"` guard: listeners on the listen port (IPv4 and IPv6), admission
/// at accept, and the broker between the admitted subscribers and the engine's XPUB — reached
/// at the first subscriber's original destination (SO_ORIGINAL_DST, after the kernel's
/// redirect) or at the policy's `upstream`, which is connected at start.
///
/// Everything of one guard runs on one loop: accepting, every subscriber, the upstream link and
/// the fan-out.
public final class BrokerGuard: @unchecked Sendable {
    /// The guard as last started or updated. Only changed on the daemon's queue.
    public private(set) var spec: Guard
    private var settings: BrokerSettings
    private let loop: EventLoop
    private let admission: Admission
    private let denials: DenialLog
    private let logger: Logger
    private let broker: Broker
    private var listeners: [Listener] = []
    private var timers: [any DispatchSourceTimer] = []
    private var fixedUpstream: SocketAddress?
    private var nextID: UInt64 = 0

    /// - Throws: `BrokerError` when the guard is not a broker guard or its upstream cannot be resolved.
    public init(_ spec: Guard, logger: Logger) throws(BrokerError) {
        guard case .broker(let settings) = spec.settings else { throw .notABroker(spec.name) }
        self.spec = spec
        self.settings = settings
        self.logger = logger
        // A loop of its own (a serial queue, not a thread): the upstream link's `busy_poll`
        // sleeps on the engine's socket in turns of up to 250 µs, which no other guard's
        // connections should wait behind.
        loop = EventLoop(index: 0, label: "ringfence.broker.\(spec.name)")
        admission = Admission(allow: spec.allow, limits: Self.admissionLimits(settings))
        admission.audit = spec.mode == .audit
        denials = DenialLog(logger: logger, guardName: spec.name)
        broker = Broker(
            loop: loop, guardName: spec.name, logger: logger, admission: admission, limits: BrokerLimits(settings))
        if let upstream = settings.upstream {
            fixedUpstream = try Self.resolve(upstream)
        }
    }

    /// Binds the listen port on all IPv4 and IPv6 addresses and starts accepting; with a fixed
    /// `upstream`, connects to it at once.
    /// - Throws: `BrokerError.listen` when the port cannot be bound.
    public func start() throws(BrokerError) {
        do throws(ListenFailure) {
            let made = try Listener.anyAddress(
                port: settings.listenPort, loop: loop,
                onError: { [weak self] error in self?.denials.recordAcceptFailure(error: "\(error)") }
            ) { [weak self] fd, peer in
                guard let self else {
                    return Posix.close(fd, reset: true)
                }
                accepted(fd: fd, peer: peer)
            }
            listeners = made.listeners
            if !made.ipv6 {
                logger.warning("no IPv6 on this host: broker listens on IPv4 only", metadata: ["guard": "\(spec.name)"])
            }
        } catch {
            stop()
            throw .listen(spec.name, error.address, error.error)
        }
        timers.append(loop.repeatingTimer(every: .milliseconds(200)) { [broker] in broker.checkDeadlines(now: .now) })
        timers.append(loop.repeatingTimer(every: .seconds(5)) { [denials, admission, broker] in
            denials.flush()
            admission.prune()
            broker.logDrops()
        })
        if let fixedUpstream {
            loop.execute { [broker] in broker.upstream.connect(to: fixedUpstream) }
        }
        logger.info(
            "broker listening",
            metadata: [
                "guard": "\(spec.name)", "port": "\(settings.listenPort)", "guarded_port": "\(spec.ports[0])",
                "upstream": "\(fixedUpstream.map { "\($0)" } ?? "original destination")",
                "hwm_messages": "\(settings.hwmMessages)", "hwm_bytes": "\(settings.hwmBytes)",
                "on_overflow": "\(settings.onOverflow.rawValue)",
            ])
    }

    /// Stops accepting and closes every subscriber and the upstream link. Returns at once.
    public func stop() {
        for listener in listeners { listener.close() }
        listeners = []
        for timer in timers { timer.cancel() }
        timers = []
        denials.flush()
        loop.execute { [broker] in broker.shutdown() }
    }

    /// Whether `update` can take `next` on in place (`Guard.canBeUpdatedInPlace`).
    public func canUpdate(to next: Guard) -> Bool {
        next.canBeUpdatedInPlace(from: spec)
    }

    /// Swaps the allowlist and limits in place and closes the subscribers the allowlist no
    /// longer admits; every other subscriber, and the upstream link, carry on. New high-water
    /// marks apply to queued messages at once. On the daemon's queue; returns once done.
    /// - Returns: the subscribers closed.
    public func update(to next: Guard) -> [ReloadReport.Cut] {
        precondition(canUpdate(to: next))
        guard case .broker(let nextSettings) = next.settings else { return [] }
        spec = next
        settings = nextSettings
        admission.allow = next.allow
        admission.audit = next.mode == .audit
        admission.limits = Self.admissionLimits(nextSettings)
        loop.queue.sync { [broker] in broker.update(limits: BrokerLimits(nextSettings)) }
        return close(reason: "not-allowed", log: "no longer allowed by the policy", byReload: true) { !next.admits($0) }
    }

    /// Closes the subscribers of peers in `block` (`proxyctl kick`). Returns once done.
    public func kick(_ block: AddressSet) -> [ReloadReport.Cut] {
        close(reason: "kicked", log: "kicked by proxyctl", byReload: false) { block.contains($0) }
    }

    /// Closes, on the broker's loop, the subscribers whose peer address `matches`, and lists them.
    private func close(
        reason: String, log: String, byReload: Bool, where matches: @escaping @Sendable (IPAddress) -> Bool
    ) -> [ReloadReport.Cut] {
        let name = spec.name
        return loop.queue.sync { [broker] in
            var cut: [ReloadReport.Cut] = []
            for session in broker.subscribers.values where matches(session.peer.address) {
                cut.append(ReloadReport.Cut(session.status(guardName: name, now: .now), reason: reason))
                if byReload { broker.counters.cutByReload += 1 }
                broker.remove(session, reason: log, level: .warning)
            }
            return cut.sorted { $0.id < $1.id }
        }
    }

    /// The guard's status and its subscribers, taken on its loop. Returns once done.
    public func snapshot() -> GuardSnapshot {
        let totals = admission.totals
        let base = GuardStatus(
            name: spec.name, kind: spec.kind.rawValue, port: spec.ports[0], listenPort: settings.listenPort,
            state: listeners.isEmpty ? "stopped" : "running", upstream: .init(state: "idle", address: nil),
            connections: 0, maxConnections: settings.maxSubscribers, queuedMessages: 0, queuedBytes: 0,
            counters: GuardCounters())
        return loop.queue.sync { [broker] in
            var snapshot = broker.snapshot(base: base)
            snapshot.status.counters.accepted = totals.accepted
            snapshot.status.counters.denied = Dictionary(
                uniqueKeysWithValues: totals.denied.map { ($0.key.rawValue, $0.value) })
            return snapshot
        }
    }

    static func admissionLimits(_ settings: BrokerSettings) -> Admission.Limits {
        .init(
            maxConnections: settings.maxSubscribers, maxConnectionsPerPeer: settings.maxSubscribersPerPeer,
            acceptRatePerPeer: 1_000_000)
    }

    /// On the loop: admission, the upstream's address, then the subscriber's handshake.
    private func accepted(fd: Int32, peer: SocketAddress) {
        guard admission.admit(fd, from: peer, denials: denials) else { return }
        if broker.upstream.address == nil {
            guard
                let destination = admission.destination(
                    of: fd, from: peer, fixed: fixedUpstream, listenPort: settings.listenPort, logger: logger,
                    guardName: spec.name)
            else { return }
            broker.upstream.connect(to: destination)
        }
        nextID += 1
        let session = SubscriberSession(id: nextID, fd: fd, peer: peer, loop: loop, limits: broker.limits)
        Posix.setNoDelay(fd)
        broker.add(session)
        logger.debug("subscriber admitted", metadata: ["guard": "\(spec.name)", "peer": "\(peer.address)"])
    }

    /// Resolves `upstream` once, at start (getaddrinfo blocks; never on a loop).
    private static func resolve(_ endpoint: Endpoint) throws(BrokerError) -> SocketAddress {
        guard let address = Posix.resolve(host: endpoint.host, port: endpoint.port) else {
            throw .unresolvable(endpoint.description)
        }
        return address
    }
}
