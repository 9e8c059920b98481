import RingfencePolicy

/// A broker guard's limits, in the units its sessions use.
struct BrokerLimits: Sendable {
    var hwmMessages: Int
    var hwmBytes: Int
    var maxTopicBytes: Int
    /// Distinct topics per subscriber (`max_subscriptions_per_peer`).
    var maxSubscriptions: Int
    var maxMessageBytes: Int
    var handshakeTimeout: Duration
    var onOverflow: BrokerSettings.OverflowAction
    var busyPoll: Duration

    /// The largest frame a subscriber may send: room for a SUBSCRIBE of the longest topic, a
    /// READY with a few properties, an ERROR; nothing a subscriber says needs more.
    var maxSubscriberFrameBytes: Int { max(512, 16 + maxTopicBytes) }

    init(_ settings: BrokerSettings) {
        hwmMessages = settings.hwmMessages
        hwmBytes = settings.hwmBytes.bytes
        maxTopicBytes = settings.maxTopicBytes
        maxSubscriptions = settings.maxSubscriptionsPerPeer
        maxMessageBytes = settings.maxMessageBytes.bytes
        handshakeTimeout = settings.handshakeTimeout
        onOverflow = settings.onOverflow
        busyPoll = settings.busyPoll
    }
}
