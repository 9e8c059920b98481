/// A broker guard's limits, in the units its sessions use. The daemon maps a policy's
/// `kind = "zmq-xpub"` guard to these (its subscriber caps go to the front end's admission).
public struct BrokerLimits: Hashable, Sendable {
    /// What the broker does with a subscriber whose queue is full.
    public enum OverflowAction: String, Hashable, Sendable {
        /// Stop reading from the engine until the subscriber drains, for at most `maxStall`
        /// without progress (then evict it).
        case block
        /// Close the subscriber, loudly.
        case disconnect
        /// Drop whole messages for that subscriber and count them.
        case drop
    }

    public var hwmMessages: Int
    public var hwmBytes: Int
    public var maxTopicBytes: Int
    /// Distinct topics per subscriber (`max_subscriptions_per_peer`).
    public var maxSubscriptions: Int
    public var maxMessageBytes: Int
    public var handshakeTimeout: Duration
    public var onOverflow: OverflowAction
    /// How long a subscriber may hold queued messages without taking a whole one before it is
    /// evicted (every action but `drop`); with `block`, the longest the engine waits for it.
    public var maxStall: Duration
    public var busyPoll: Duration

    /// The largest frame a subscriber may send: room for a SUBSCRIBE of the longest topic, a
    /// READY with a few properties, an ERROR; nothing a subscriber says needs more.
    var maxSubscriberFrameBytes: Int { max(512, 16 + maxTopicBytes) }

    public init(
        hwmMessages: Int, hwmBytes: Int, maxTopicBytes: Int,
        maxSubscriptions: Int, maxMessageBytes: Int, handshakeTimeout: Duration, onOverflow: OverflowAction,
        maxStall: Duration = .seconds(2), busyPoll: Duration
    ) {
        self.hwmMessages = hwmMessages
        self.hwmBytes = hwmBytes
        self.maxTopicBytes = maxTopicBytes
        self.maxSubscriptions = maxSubscriptions
        self.maxMessageBytes = maxMessageBytes
        self.handshakeTimeout = handshakeTimeout
        self.onOverflow = onOverflow
        self.maxStall = maxStall
        self.busyPoll = busyPoll
    }
}
