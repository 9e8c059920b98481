/// The limits of a `kind = "zmq-xpub"` guard: the ZMTP broker in front of vLLM's broadcast XPUB.
/// Every default here is documented in docs/policy.md.
public struct BrokerSettings: Hashable, Sendable {
    /// What the broker does with a subscriber whose queue is full.
    public enum OverflowAction: String, Hashable, Sendable, CaseIterable {
        /// Stop reading from the engine until the subscriber's queue drains (TCP backpressure, as
        /// libzmq's XPUB_NODROP pushes back on its publisher), for at most `maxStall` without
        /// progress: lossless for readers that read, bounded for those that do not. The default:
        /// a vLLM reader cannot skip a message, and vLLM's own shared-memory readers hold the
        /// writer back the same way.
        case block
        /// Close the subscriber, loudly: for vLLM a silently missed message desyncs the group.
        case disconnect
        /// Drop whole messages for that subscriber and count them.
        case drop
    }

    /// The broker's own port, reachable only through the redirect. Default: `port + 10000`.
    /// 0 with `discover`: each discovered XPUB's broker listens on an ephemeral port.
    public var listenPort: UInt16
    /// `discover = true`: the guard names no port; every ZMTP XPUB listener that appears on this
    /// host is brokered (the first discover guard in policy order whose `process` matches takes it).
    public var discover = false
    /// With `discover`: only listeners of processes whose command line contains this text.
    public var process: String?
    /// Where the engine's XPUB is; nil means the connection's original destination.
    public var upstream: Endpoint?
    /// Subscribers admitted at once: at least vLLM's expected remote reader count.
    public var maxSubscribers = 32
    /// Subscribers from one address (one per remote rank is normal).
    public var maxSubscribersPerPeer = 8
    /// New connections per second that one peer may open: well above libzmq's reconnects
    /// (every 100 ms per socket by default), so that only a storm is refused.
    public var acceptRatePerPeer = 20
    /// Distinct topics one subscriber may hold.
    public var maxSubscriptionsPerPeer = 64
    /// At most 245: libzmq 4.3.4 mis-frames subscriptions of 246-255 bytes.
    public var maxTopicBytes = 245
    /// The largest message (all frames) the broker accepts from upstream.
    public var maxMessageBytes = ByteSize.mebibytes(64)
    /// Messages queued per subscriber.
    public var hwmMessages = 1000
    /// Bytes queued per subscriber. vLLM's work items are kilobytes to a few MiB; 64 MiB holds
    /// hundreds of them, and it bounds what a subscriber that stops reading can pin.
    public var hwmBytes = ByteSize.mebibytes(64)
    public var onOverflow = OverflowAction.block
    /// The longest a subscriber may hold queued messages without taking a whole one: then it is
    /// evicted (with `block`, also the longest the engine waits for it). Not with `drop`.
    public var maxStall = Duration.seconds(2)
    /// The most `max_stall` may be: past this a reader that takes nothing is gone, not slow.
    public static let maxMaxStall = Duration.seconds(60)
    /// Greeting and READY must arrive within this time.
    public var handshakeTimeout = Duration.seconds(5)
    /// After a message arrives from the engine, how long the broker keeps waiting on that
    /// connection itself, asleep in ppoll(2), instead of going back to Dispatch's wake-ups.
    /// Unlike the relay's `busy_poll` it does not spin: the engine, its readers and the broker
    /// compete for the same cores, and measured on 2 cores a spinning broker cost the publisher
    /// and readers more than it saved. Waiting in ppoll(2) cuts one of the two context switches
    /// Dispatch spends on each wake-up, which is most of the latency the broker adds.
    public var busyPoll = Duration.milliseconds(2)

    public init(listenPort: UInt16) { self.listenPort = listenPort }
}
