import Dispatch
import Logging
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceZMTP
import SystemPackage

/// The broker's one connection to the engine's XPUB, as an XSUB: connect, handshake, send the
/// subscriptions, read whole messages; on any loss, reconnect with backoff and send the
/// subscriptions again, so a restarted writer counts its readers afresh. Subscribers are told
/// nothing, exactly as with a direct libzmq connection. Confined to the broker's loop.
final class UpstreamLink: @unchecked Sendable {
    enum State {
        /// No address yet (original destination, before the first subscriber).
        case idle
        case handshaking(Handshake, since: ContinuousClock.Instant)
        case ready(peerMinor: UInt8)
        /// Waiting before the next attempt.
        case waiting
        case stopped
    }

    private let loop: EventLoop
    private let logger: Logger
    private let guardName: String
    private var limits: BrokerLimits
    private(set) var address: SocketAddress?
    private(set) var state = State.idle
    private var connection: Connection?
    private var reader: MessageReader
    private var backoff = Duration.milliseconds(100)
    private var failuresLogged = 0
    /// The most one read from the engine takes in: a fan-out's batch.
    static let readBufferSize = 256 << 10
    /// Called on the loop with each whole message, and after each read with the batch's end.
    var onMessage: ([SharedBytes]) -> Void = { _ in }
    var onOversized: (Int) -> Void = { _ in }
    var onBatchEnd: () -> Void = {}
    /// The subscriptions to send on (re)connecting.
    var subscriptions: () -> [[UInt8]] = { [] }
    private(set) var messagesIn: UInt64 = 0
    /// Handshakes with the engine that completed.
    private(set) var connects: UInt64 = 0
    /// Held back (`on_overflow = "block"`): the engine's messages are not read, so its TCP
    /// window closes and its sends wait, as with libzmq's XPUB_NODROP. A handshake still
    /// completes while held; the messages after it wait.
    private(set) var isHeld = false

    init(loop: EventLoop, logger: Logger, guardName: String, limits: BrokerLimits) {
        self.loop = loop
        self.logger = logger
        self.guardName = guardName
        self.limits = limits
        reader = Self.makeReader(limits)
    }

    private static func makeReader(_ limits: BrokerLimits) -> MessageReader {
        MessageReader(
            maxFrameBytes: UInt64(limits.maxMessageBytes), maxMessageBytes: limits.maxMessageBytes, skipsOversized: true)
    }

    /// Takes new limits: `busy_poll` at once, the message cap from the next connection on (a
    /// message being read keeps the cap it started under).
    func update(limits next: BrokerLimits) {
        limits = next
        connection?.busyPoll = next.busyPoll
    }

    /// The link's state for `proxyctl status`.
    var stateName: UpstreamState {
        switch state {
        case .idle: return .idle
        case .handshaking: return .connecting
        case .ready: return .connected
        case .waiting: return .waiting
        case .stopped: return .stopped
        }
    }

    var isReady: Bool {
        if case .ready = state { return true }
        return false
    }

    /// Sets the engine's address and connects, unless already connected or trying.
    func connect(to address: SocketAddress) {
        guard case .idle = state else { return }
        self.address = address
        attempt()
    }

    /// Sends one subscription change, if the link is up (otherwise it goes with the rest on connecting).
    func send(_ subscription: Subscription) {
        guard case .ready(let minor) = state, let connection else { return }
        connection.write(subscription.encodedFrame(peerMinor: minor))
    }

    /// Stops or resumes reading the engine's messages.
    func hold(_ held: Bool) {
        guard held != isHeld else { return }
        isHeld = held
        if isReady { connection?.setReading(!held) }
    }

    /// Closes the link for good.
    func stop() {
        state = .stopped
        connection?.close()
        connection = nil
    }

    /// A read and write attempt on the engine's connection (see `Connection.nudge`).
    func nudge() {
        connection?.nudge()
    }

    /// Enforces the handshake deadline (which also bounds the connect). On the loop.
    func checkDeadline(now: ContinuousClock.Instant) {
        if case .handshaking(_, let since) = state, now - since > limits.handshakeTimeout {
            fail("no ZMTP greeting and READY within handshake_timeout")
        }
    }

    private func attempt() {
        guard let address else { return }
        let socket: Socket
        do throws(Errno) {
            socket = try Socket.tcp(family: address.family)
        } catch {
            return fail("socket: \(error)")
        }
        Posix.setNoDelay(socket.fd)
        do throws(Errno) {
            _ = try Posix.connect(socket.fd, address)
        } catch {
            // Refused at once (an engine that is down): the socket is closed here, not leaked.
            socket.close()
            return fail("connect: \(error)")
        }
        let connection = Connection(socket: socket, loop: loop, writeLimit: 16 << 20, readBufferSize: Self.readBufferSize)
        connection.busyPollMode = .wait
        connection.busyPoll = limits.busyPoll
        self.connection = connection
        reader = Self.makeReader(limits)
        let handshake = Handshake(localType: .xsub, minor: 1, maxCommandBytes: 4096)
        state = .handshaking(handshake, since: .now)
        connection.onRead = { [unowned self] bytes in received(bytes) }
        connection.readTarget = { [unowned self] in isReady ? reader.directTarget() : nil }
        connection.onReadIntoTarget = { [unowned self] count in
            var events: [MessageReader.Event] = []
            do throws(MessageReader.Failure) {
                try reader.didReadDirectly(count, into: &events)
            } catch {
                return failAfter(events, "\(error)")
            }
            handle(events)
        }
        connection.onEndOfInput = { [unowned self] in fail("the engine closed the connection") }
        connection.onError = { [unowned self] error in fail("\(error)") }
        // Written at once, or as soon as the connect completes; a refused connect fails the write or the read.
        connection.write(handshake.opening)
        connection.setReading(true)
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        var rest = bytes
        if case .handshaking(var handshake, let since) = state {
            let consumed: Int
            do throws(ZMTPError) {
                consumed = try handshake.feed(bytes)
            } catch {
                return fail("handshake: \(error)")
            }
            guard handshake.state == .done, let minor = handshake.negotiatedMinor else {
                state = .handshaking(handshake, since: since)
                return
            }
            state = .ready(peerMinor: minor)
            becameReady(minor: minor, engineType: handshake.peerType)
            rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
        }
        guard isReady, !rest.isEmpty else { return }
        var events: [MessageReader.Event] = []
        do throws(MessageReader.Failure) {
            try reader.consume(rest, into: &events)
        } catch {
            return failAfter(events, "\(error)")
        }
        handle(events)
    }

    private func becameReady(minor: UInt8, engineType: SocketType?) {
        let subscriptions = subscriptions()
        logger.info(
            "upstream connected",
            metadata: [
                "guard": "\(guardName)", "upstream": "\(address.map { "\($0)" } ?? "")", "zmtp": "3.\(minor)",
                "subscriptions": "\(subscriptions.count)", "socket_type": "\(engineType.map { "\($0)" } ?? "")",
            ])
        connects += 1
        backoff = .milliseconds(100)
        failuresLogged = 0
        for topic in subscriptions {
            connection?.write(Subscription.subscribe(topic).encodedFrame(peerMinor: minor))
        }
        // Bytes after READY in this read are still delivered (the reader has them); the next
        // reads wait.
        if isHeld { connection?.setReading(false) }
    }

    private func handle(_ events: [MessageReader.Event]) {
        for event in events {
            switch event {
            case .message(let frames):
                messagesIn += 1
                onMessage(frames)
            case .oversized(let bytes):
                onOversized(bytes)
            case .command(let command):
                if case .ping(_, let context) = command {
                    connection?.write(Command.pong(context: context).encodedFrame())
                }
            }
        }
        onBatchEnd()
    }

    /// A bad frame from the engine: the whole messages decoded before it in the same read are
    /// the engine's and go to the readers first (a libzmq SUB delivers them too,
    /// docs/reliability.md "Differential test"), then the connection is dropped.
    private func failAfter(_ events: [MessageReader.Event], _ reason: String) {
        if !events.isEmpty { handle(events) }
        fail(reason)
    }

    /// Drops the connection and schedules the next attempt, logging the first failures and
    /// then only every tenth, so an engine that is down for long does not flood the log.
    private func fail(_ reason: String) {
        if case .stopped = state { return }
        let wasReady = isReady
        connection?.close(reset: true)
        connection = nil
        state = .waiting
        if wasReady {
            logger.warning(
                "upstream lost; reconnecting",
                metadata: ["guard": "\(guardName)", "upstream": "\(address.map { "\($0)" } ?? "")", "error": "\(reason)"])
        } else if failuresLogged < 3 || failuresLogged % 10 == 0 {
            logger.error(
                "upstream unreachable; retrying",
                metadata: [
                    "guard": "\(guardName)", "upstream": "\(address.map { "\($0)" } ?? "")", "error": "\(reason)",
                    "retry_in": "\(backoff)",
                ])
        }
        failuresLogged += 1
        let delay = backoff
        backoff = min(backoff * 2, .seconds(5))
        loop.queue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay.nanoseconds))) { [weak self] in
            guard let self, case .waiting = state else { return }
            attempt()
        }
    }
}
