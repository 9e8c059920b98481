import Logging
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceTCPStore
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One relayed connection: the accepted client, its upstream, and a pump each way.
///
/// An explicit state machine — connecting, relaying, closed — confined to its loop. Half-closes
/// pass through (each pump shuts its destination's write side when its source ends); the
/// session ends when both directions have finished, or at once on an error, a gate violation or
/// a deadline, with a reset where the other side must learn of it.
final class RelaySession: @unchecked Sendable {
    enum State {
        case connecting(since: ContinuousClock.Instant)
        case relaying
        case closed
    }

    /// Why a session ended, as logged.
    enum Ending {
        case completed
        case clientError(Errno)
        case upstreamUnreachable(String)
        /// A socket or pipe could not be made (out of descriptors or memory).
        case resources(String)
        case violation(TCPStoreViolation)
        case timeout(String)
        case shutdown
        /// A reload took the peer off the allowlist.
        case notAllowed
        /// `proxyctl kick`.
        case kicked
    }

    let id: UInt64
    let peer: SocketAddress
    let upstreamAddress: SocketAddress
    let loop: EventLoop
    private let context: RelayContext
    private var state: State
    let acceptedAt: ContinuousClock.Instant
    private var lastActivity: ContinuousClock.Instant
    /// The guard's limits as they were when the session started: read once, so that a reload
    /// cannot land between two reads of one connect.
    private let limits: RelayLimits
    private var client: Channel!
    private var upstream: Channel?
    private var clientToUpstream: Pump?
    private var upstreamToClient: Pump?
    private var finishedDirections = 0
    /// Polls both sockets after bytes move (`busy_poll`); nil until relaying.
    private var poller: BusyPoller?
    /// A nudge has moved bytes (logged once per connection).
    private var nudgeLogged = false

    /// - Parameter client: the accepted socket, which the session owns from here (`close`).
    init(id: UInt64, client socket: consuming Socket, peer: SocketAddress, upstream: SocketAddress, loop: EventLoop, context: RelayContext) {
        self.id = id
        self.peer = peer
        upstreamAddress = upstream
        self.loop = loop
        self.context = context
        limits = context.limits
        acceptedAt = .now
        lastActivity = acceptedAt
        state = .connecting(since: acceptedAt)
        client = Channel(
            socket: socket, loop: loop,
            onReadable: { [unowned self] in handle(clientToUpstream?.sourceReadable()) },
            onWritable: { [unowned self] in handle(upstreamToClient?.destinationWritable()) })
    }

    /// Starts the upstream connect. On the session's loop.
    func start() {
        loop.preconditionInLoop()
        let socket: Socket
        do throws(Errno) {
            socket = try Socket.tcp(family: upstreamAddress.family)
        } catch {
            return close(.resources("socket: \(error)"))
        }
        let fd = socket.fd
        // The channel owns the socket from here: `close` closes it, whatever the connect does.
        let channel = Channel(
            socket: socket, loop: loop,
            onReadable: { [unowned self] in handle(upstreamToClient?.sourceReadable()) },
            onWritable: { [unowned self] in
                if case .connecting = state { connected() } else { handle(clientToUpstream?.destinationWritable()) }
            })
        upstream = channel
        // Small request/response protocols (TCPStore) must not wait on Nagle's algorithm in the middle.
        Posix.setNoDelay(client.fd, fd)
        do throws(Errno) {
            switch try Posix.connect(fd, upstreamAddress) {
            case .done: connected()
            case .wouldBlock:
                // Across a veth or loopback the handshake has often finished by the time connect
                // returns: one poll(2) then spares a write source and a thread wake-up.
                if Posix.waitWritable(fd, timeout: .zero) { connected() } else { channel.setWriting(true) }
            }
        } catch {
            close(.upstreamUnreachable("\(error)"))
        }
    }

    private func connected() {
        guard case .connecting = state, let upstream else { return }
        upstream.setWriting(false)
        if let error = Posix.pendingError(upstream.fd) {
            return close(.upstreamUnreachable("\(error)"))
        }
        state = .relaying
        // No pipe or buffer is made here: a pump borrows one from the loop's pool once bytes flow.
        let capacity = limits.bufferBytes
        let pipes = context.pipes(on: loop)
        let toUpstream: Pump
        if limits.appProtocol == .tcpstore {
            toUpstream = GatedPump(
                from: client, to: upstream, capacity: min(capacity, 256 << 10),
                gate: TCPStoreGate(limits: limits.tcpstore), pool: context.buffers(on: loop))
        } else {
            toUpstream = SplicePump(from: client, to: upstream, capacity: capacity, pool: pipes)
        }
        toUpstream.onProgress = { [unowned self] in progressed() }
        clientToUpstream = toUpstream
        let toClient = SplicePump(from: upstream, to: client, capacity: capacity, pool: pipes)
        toClient.onProgress = { [unowned self] in progressed() }
        upstreamToClient = toClient
        // After bytes move, both sockets are polled for busy_poll (see BusyPoller).
        // Each turn reads the client, then the upstream (their channels' read handlers).
        poller = BusyPoller(
            window: limits.busyPoll, loop: loop,
            channels: { [unowned self] in [client, upstream] })
        context.logger.debug(
            "connection relayed",
            metadata: ["guard": "\(context.guardName)", "peer": "\(peer.address)", "upstream": "\(upstreamAddress)"])
        clientToUpstream?.start()
        upstreamToClient?.start()
    }

    private func progressed() {
        lastActivity = .now
        poller?.activity()
    }

    private func handle(_ step: PumpStep?) {
        guard let step else { return }
        if case .closed = state { return }
        switch step {
        case .ok:
            break
        case .finished:
            finishedDirections += 1
            if finishedDirections == 2 { close(.completed) }
        case .failed(let error):
            close(.clientError(error))
        case .violation(let violation):
            close(.violation(violation))
        case .outOfResources(let reason):
            close(.resources(reason))
        }
    }

    /// Enforces the connect, handshake, partial-command and idle deadlines of `settings` (the
    /// guard's limits as the sweep read them). On the loop.
    func checkDeadlines(now: ContinuousClock.Instant, settings: RelayLimits) {
        switch state {
        case .closed:
            return
        case .connecting(let since):
            if now - since > settings.connectTimeout { close(.upstreamUnreachable("connect timeout")) }
            return
        case .relaying:
            break
        }
        if settings.appProtocol == .tcpstore, let gated = clientToUpstream as? GatedPump {
            if !gated.gate.isValidated && now - acceptedAt > settings.handshakeTimeout {
                return close(.timeout("handshake_timeout"))
            }
            if let since = gated.midCommandSince, now - since > settings.partialTimeout {
                return close(.timeout("partial_timeout"))
            }
        }
        if settings.idleTimeout > .zero && now - lastActivity > settings.idleTimeout {
            return close(.timeout("idle_timeout"))
        }
        if now - lastActivity > .milliseconds(200) { nudge() }
    }

    /// One read and one write attempt each way, whatever the Dispatch sources say. libdispatch
    /// has been seen to report an event once and then stop (a hang-up); if it ever drops one, a
    /// connection that has been quiet for a sweep is moved on within 200 ms instead of stalling
    /// for good. It moves nothing in the normal case; when it does, the log says so
    /// (docs/libdispatch.md §3).
    private func nudge() {
        guard case .relaying = state, let clientToUpstream, let upstreamToClient else { return }
        let before = clientToUpstream.bytesForwarded + upstreamToClient.bytesForwarded
        for channel in [client, upstream] {
            channel?.nudge()
            guard case .relaying = state else { return }
        }
        let moved = clientToUpstream.bytesForwarded + upstreamToClient.bytesForwarded - before
        if moved > 0 && !nudgeLogged {
            nudgeLogged = true
            context.logger.info(
                "quiet connection moved bytes when nudged (an event was missed)",
                metadata: ["guard": "\(context.guardName)", "peer": "\(peer.address)", "bytes": "\(moved)"])
        }
    }

    /// Ends the session: both sockets closed (with a reset where the other side must learn of
    /// an abnormal end), pumps released, the admission slot given back, the end logged.
    func close(_ ending: Ending) {
        if case .closed = state { return }
        let wasConnecting: Bool
        if case .connecting = state { wasConnecting = true } else { wasConnecting = false }
        state = .closed
        poller?.stop()
        let abnormal: Bool
        if case .completed = ending { abnormal = false } else { abnormal = true }
        client.close(reset: abnormal)
        upstream?.close(reset: abnormal && !wasConnecting)
        clientToUpstream?.close()
        upstreamToClient?.close()
        var violation = false
        if case .violation = ending { violation = true }
        var cut = false
        if case .notAllowed = ending { cut = true }
        context.sessionEnded(self, violation: violation, cutByReload: cut)
        log(ending)
    }

    /// Bytes relayed from the client to the upstream, and back.
    var bytesFromClient: UInt64 { clientToUpstream?.bytesForwarded ?? 0 }
    var bytesToClient: UInt64 { upstreamToClient?.bytesForwarded ?? 0 }

    /// The connection for `proxyctl peers`. On the loop.
    func status(now: ContinuousClock.Instant) -> ConnectionStatus {
        let stateName: String
        switch state {
        case .connecting: stateName = "connecting"
        case .relaying: stateName = "relaying"
        case .closed: stateName = "closed"
        }
        return ConnectionStatus(
            guardName: context.guardName, id: id, peer: "\(peer.address)", port: peer.port, state: stateName,
            ageSeconds: (now - acceptedAt).inSeconds,
            bytesFromPeer: bytesFromClient, bytesToPeer: bytesToClient)
    }

    /// For the log: the TCPStore requests the gate passed whole, or nil without a gate.
    private var gatedCommands: Logger.MetadataValue? {
        (clientToUpstream as? GatedPump).map { "\($0.gate.commands)" }
    }

    private func log(_ ending: Ending) {
        var metadata: Logger.Metadata = [
            "guard": "\(context.guardName)", "peer": "\(peer.address)", "upstream": "\(upstreamAddress)",
            "bytes_in": "\(clientToUpstream?.bytesForwarded ?? 0)", "bytes_out": "\(upstreamToClient?.bytesForwarded ?? 0)",
        ]
        switch ending {
        case .completed, .shutdown:
            context.logger.debug("connection closed", metadata: metadata)
        case .notAllowed:
            metadata["reason"] = "no longer allowed by the policy"
            context.logger.warning("connection closed", metadata: metadata)
        case .kicked:
            metadata["reason"] = "kicked by proxyctl"
            context.logger.warning("connection closed", metadata: metadata)
        case .clientError(let error):
            metadata["error"] = "\(error)"
            context.logger.info("connection closed: socket error", metadata: metadata)
        case .upstreamUnreachable(let reason):
            metadata["error"] = "\(reason)"
            context.logger.error("upstream unreachable", metadata: metadata)
        case .resources(let reason):
            metadata["error"] = "\(reason)"
            context.logger.error("connection closed: out of resources", metadata: metadata)
        case .violation(let violation):
            metadata["rule"] = "\(violation.rule.rawValue)"
            metadata["detail"] = "\(violation.description)"
            metadata["commands"] = gatedCommands
            context.logger.warning("connection closed: protocol violation", metadata: metadata)
            context.admission.strike(peer.address, reason: .protocolViolation)
        case .timeout(let rule):
            metadata["rule"] = "\(rule)"
            metadata["commands"] = gatedCommands
            context.logger.warning("connection closed: timeout", metadata: metadata)
            if rule != "idle_timeout" { context.admission.strike(peer.address, reason: .timeout) }
        }
    }
}
