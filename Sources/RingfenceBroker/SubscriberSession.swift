import DequeModule
import Dispatch
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceZMTP

/// One admitted subscriber: its ZMTP handshake (we are the XPUB), its topics, and its queue of
/// messages bounded by the guard's high-water marks. An explicit state machine — handshaking,
/// active, closed — confined to the broker's loop.
///
/// A subscriber may send subscriptions (either wire form), PING and PONG; anything else (data,
/// an unknown command, a topic over the cap, too many topics) closes it, with an ERROR first
/// where ZMTP allows one. Its queue counts whole messages and their bytes; the broker decides
/// what an overflow means (`on_overflow`).
final class SubscriberSession: @unchecked Sendable {
    enum State {
        case handshaking(Handshake, since: ContinuousClock.Instant)
        case active
        case closed
    }

    /// What handing a message to the queue came to.
    enum Delivery {
        case queued
        /// Over `hwm_messages` or `hwm_bytes`: nothing was queued.
        case overflow
    }

    let id: UInt64
    let peer: SocketAddress
    let connection: Connection
    private(set) var state: State
    private(set) var topics: Set<[UInt8]> = []
    private var reader: MessageReader
    private var limits: BrokerLimits
    let acceptedAt = ContinuousClock.now
    /// For each queued message, the value of `queuedTotal` at its end: a message has left once
    /// the connection has written that many bytes.
    private var messageEnds = Deque<UInt64>()
    /// Bytes ever queued on the connection (handshake and PONGs included).
    private var queuedTotal: UInt64 = 0
    /// What waits behind a full socket, whole messages (or PONGs) in order, not yet in the
    /// connection's queue: handed to the connection when it drains. A subscriber that reads
    /// nothing then costs one append per message, not the connection's per-chunk work (copying
    /// small frames, building its queue), which only a subscriber that reads ever needs.
    private var backlog = Deque<(chunks: [SharedBytes], bytes: Int)>()
    private var backlogBytes = 0
    private(set) var delivered: UInt64 = 0
    private(set) var dropped: UInt64 = 0
    /// Drops not yet logged.
    var unloggedDrops: UInt64 = 0
    /// Queued writes wait for the end of the upstream batch (set and cleared by the broker).
    var needsFlush = false
    /// When the oldest queued message became the oldest (it was queued into an empty queue, or
    /// the one before it left): `max_stall` counts from here.
    private var progressSince = ContinuousClock.now
    /// Holding the engine back (`on_overflow = "block"`): set and cleared by the broker.
    var isHoldingUpstream = false

    /// - Parameter socket: the accepted socket, which the session's connection owns from here.
    init(id: UInt64, socket: consuming Socket, peer: SocketAddress, loop: EventLoop, limits: BrokerLimits) {
        self.id = id
        self.peer = peer
        self.limits = limits
        connection = Connection(socket: socket, loop: loop, writeLimit: Self.writeLimit(limits), readBufferSize: 4096)
        state = .handshaking(
            Handshake(localType: .xpub, minor: 1, maxCommandBytes: limits.maxSubscriberFrameBytes), since: .now)
        reader = MessageReader(
            maxFrameBytes: UInt64(limits.maxSubscriberFrameBytes), maxMessageBytes: limits.maxSubscriberFrameBytes,
            skipsOversized: false)
    }

    var isActive: Bool {
        if case .active = state { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Sends our greeting and READY at once, then reads. On the loop.
    func start() {
        if case .handshaking(let handshake, _) = state { write(handshake.opening) }
        connection.setReading(true)
    }

    /// What the subscriber's bytes came to, for the broker to act on.
    enum Input {
        case subscribe([UInt8])
        case cancel([UInt8])
        case ready
    }

    /// Feeds received bytes through the handshake and the reader.
    /// - Throws: `SubscriberViolation` — the broker closes the subscriber and logs it.
    func receive(_ bytes: UnsafeRawBufferPointer, into inputs: inout [Input]) throws(SubscriberViolation) {
        var rest = bytes
        if case .handshaking(var handshake, let since) = state {
            let consumed: Int
            do throws(ZMTPError) {
                consumed = try handshake.feed(bytes)
            } catch {
                throw .handshake(error)
            }
            guard handshake.state == .done else {
                state = .handshaking(handshake, since: since)
                return
            }
            state = .active
            inputs.append(.ready)
            rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
        }
        guard isActive, !rest.isEmpty else { return }
        var events: [MessageReader.Event] = []
        do throws(MessageReader.Failure) {
            try reader.consume(rest, into: &events)
        } catch {
            switch error {
            case .zmtp(let zmtp): throw .frame(zmtp)
            case .messageTooLarge(let size, let cap): throw .messageTooLarge(size: size, cap: cap)
            }
        }
        for event in events { try handle(event, into: &inputs) }
    }

    private func handle(_ event: MessageReader.Event, into inputs: inout [Input]) throws(SubscriberViolation) {
        let subscription: Subscription
        switch event {
        case .oversized(let bytes):
            throw .messageTooLarge(size: bytes, cap: limits.maxSubscriberFrameBytes)
        case .message(let frames):
            guard frames.count == 1, let parsed = frames[0].withUnsafeBytes({ Subscription.fromMessage($0) }) else {
                throw .dataMessage(frames: frames.count, bytes: frames.reduce(0) { $0 + $1.count })
            }
            subscription = parsed
        case .command(let command):
            switch command {
            case .ping(_, let context):
                write(Command.pong(context: context).encodedFrame())
                return
            case .pong:
                return
            case .error(let reason):
                throw .peerError(reason)
            default:
                guard let parsed = Subscription.fromCommand(command) else { throw .unexpectedCommand("\(command.name)") }
                subscription = parsed
            }
        }
        switch subscription {
        case .subscribe(let topic):
            guard topic.count <= limits.maxTopicBytes else {
                throw .topicTooLong(bytes: topic.count, cap: limits.maxTopicBytes)
            }
            guard !topics.contains(topic) else { return }
            guard topics.count < limits.maxSubscriptions else { throw .tooManySubscriptions(cap: limits.maxSubscriptions) }
            topics.insert(topic)
            inputs.append(.subscribe(topic))
        case .cancel(let topic):
            guard topics.remove(topic) != nil else { return }
            inputs.append(.cancel(topic))
        }
    }

    /// Takes the guard's new limits. The queue's byte limit follows `hwm_bytes`; the handshake
    /// and the frame reader keep the caps they started with.
    func update(limits next: BrokerLimits) {
        limits = next
        connection.writeLimit = Self.writeLimit(next)
    }

    /// Room for a whole queue: the high-water marks are enforced before a write, or (`block`)
    /// the engine is held back once one is reached, after at most the rest of the read that
    /// reached it (`UpstreamLink.readBufferSize`) and a message that read completes.
    static func writeLimit(_ limits: BrokerLimits) -> Int {
        limits.hwmBytes + limits.maxMessageBytes + UpstreamLink.readBufferSize + (64 << 10)
    }

    /// The subscriber for `proxyctl peers`.
    func status(guardName: String, now: ContinuousClock.Instant) -> ConnectionStatus {
        ConnectionStatus(
            guardName: guardName, id: id, peer: "\(peer.address)", port: peer.port, state: isActive ? "active" : "handshaking",
            ageSeconds: (now - acceptedAt).inSeconds,
            queuedMessages: queuedMessages, hwmMessages: limits.hwmMessages, queuedBytes: queuedBytes,
            hwmBytes: limits.hwmBytes, bytesFromPeer: connection.bytesRead, bytesToPeer: connection.bytesWritten,
            delivered: delivered, dropped: dropped, topics: topics.map { Broker.printable($0) }.sorted())
    }

    /// Whether any of the subscriber's topics is a prefix of `frame` (libzmq's matching).
    func matches(_ frame: SharedBytes) -> Bool {
        for topic in topics where frame.starts(with: topic) { return true }
        return false
    }

    /// Messages queued and not yet written whole.
    var queuedMessages: Int {
        retireWritten()
        return messageEnds.count
    }

    var queuedBytes: Int { connection.queuedBytes + backlogBytes }

    /// Frame headers and bodies up to this size are copied into the subscriber's own buffer
    /// rather than queued by reference: a burst of small messages then leaves in a few large
    /// writes instead of two iovecs a message, and costs no reference counting per subscriber.
    /// Small, so that what a subscriber holds of its own stays within `hwm_messages` × 1 KiB.
    static let copyLimit = 1 << 10

    /// Queues `message` whole unless that would pass a high-water mark; the write is left for
    /// `connection.flush()` so that a burst leaves in few gathered writes. With `on_overflow =
    /// "block"` the marks do not refuse a message (the broker stops reading from the engine
    /// once a queue is `isFull`, and what that read already held must still be queued): only
    /// the connection's write limit, which leaves room for that, does.
    func deliver(_ message: BrokerMessage) -> Delivery {
        retireWritten()
        // An empty queue always takes a message: one as large as max_message_bytes (which the
        // policy keeps within hwm_bytes) plus its frame headers must still get through.
        guard messageEnds.isEmpty || limits.onOverflow == .block
            || (messageEnds.count < limits.hwmMessages && queuedBytes + message.wireBytes <= limits.hwmBytes)
        else {
            return .overflow
        }
        guard enqueue(message.chunks, bytes: message.wireBytes) else { return .overflow }
        if messageEnds.isEmpty { progressSince = .now }
        queuedTotal += UInt64(message.wireBytes)
        messageEnds.append(queuedTotal)
        delivered += 1
        return .queued
    }

    /// At or over a high-water mark: with `block`, the broker holds the engine back.
    var isFull: Bool {
        queuedMessages >= limits.hwmMessages || queuedBytes >= limits.hwmBytes
    }

    /// At or under half of both marks (libzmq's low-water mark): a held engine may go on.
    var isBelowLowWater: Bool {
        queuedMessages <= limits.hwmMessages / 2 && queuedBytes <= limits.hwmBytes / 2
    }

    /// Queues `chunks` on the connection, or behind it while its socket is full.
    private func enqueue(_ chunks: [SharedBytes], bytes: Int) -> Bool {
        guard backlog.isEmpty, !connection.isWaitingToWrite else {
            guard !connection.isClosed, queuedBytes + bytes <= connection.writeLimit else { return false }
            backlog.append((chunks, bytes))
            backlogBytes += bytes
            return true
        }
        return connection.write(chunks, copyingUpTo: Self.copyLimit, flush: false)
    }

    /// The connection drained: what waited behind it goes to it, in order, and is written.
    func refill() {
        guard !backlog.isEmpty, !isClosed else { return }
        while let (chunks, bytes) = backlog.first {
            guard connection.write(chunks, copyingUpTo: Self.copyLimit, flush: false) else { break }
            backlog.removeFirst()
            backlogBytes -= bytes
        }
        connection.flush()
    }

    /// Whether the subscriber has held queued messages for longer than `max_stall` without a
    /// whole one leaving: it is not reading (or reads too slowly to matter). A subscriber with
    /// nothing queued, or that took a message since the last call, is not stalled.
    func isStalled(now: ContinuousClock.Instant) -> Bool {
        retireWritten()
        guard !messageEnds.isEmpty else { return false }
        return now - progressSince > limits.maxStall
    }

    /// How long the subscriber has gone without taking a whole message while some were queued.
    func stalledFor(now: ContinuousClock.Instant) -> Duration {
        messageEnds.isEmpty ? .zero : now - progressSince
    }

    func countDrop() {
        dropped += 1
        unloggedDrops += 1
    }

    /// Sends an ERROR (where the peer is far enough in the handshake to read one) and closes.
    func close(error reason: String? = nil) {
        guard !isClosed else { return }
        backlog.removeAll()
        backlogBytes = 0
        // Nothing the peer sends from now on is read or reported: the broker has let go.
        connection.setReading(false)
        connection.onRead = { _ in }
        connection.onEndOfInput = {}
        connection.onError = { _ in }
        if let reason {
            write(Command.error(reason: reason).encodedFrame())
            connection.shutdownWrite()
            // The ERROR must leave before the socket closes: close once the queue is flushed, or
            // at once if the peer does not read it.
            connection.onDrained = { [weak connection] in connection?.close() }
            if connection.queuedBytes > 0 {
                connection.loop.queue.asyncAfter(deadline: .now() + .milliseconds(200)) { [connection] in
                    connection.close(reset: true)
                }
            } else {
                connection.close()
            }
        } else {
            connection.close(reset: true)
        }
        state = .closed
    }

    private func write(_ bytes: [UInt8]) {
        guard backlog.isEmpty else {
            // Behind the messages waiting, so that the byte counts stay in order.
            if enqueue([SharedBytes(bytes)], bytes: bytes.count) { queuedTotal += UInt64(bytes.count) }
            return
        }
        if connection.write(bytes) { queuedTotal += UInt64(bytes.count) }
    }

    private func retireWritten() {
        let written = connection.bytesWritten
        var retired = false
        while let end = messageEnds.first, end <= written {
            messageEnds.removeFirst()
            retired = true
        }
        if retired { progressSince = .now }
    }
}
