/// One live connection of a guard, as `proxyctl peers` lists it: whose it is, how old, what it
/// has queued against its limits, and what it has moved.
public struct ConnectionStatus: Codable, Hashable, Sendable {
    public var guardName: String
    /// The guard's session number (in the logs as `id` for relays).
    public var id: UInt64
    /// The peer's address.
    public var peer: String
    /// The peer's port.
    public var port: UInt16
    /// Relay: `connecting`, `relaying`; broker: `handshaking`, `active`.
    public var state: String
    public var ageSeconds: Double
    /// Broker: whole messages queued to the subscriber, against `hwm_messages`.
    public var queuedMessages: Int
    public var hwmMessages: Int?
    /// Broker: bytes queued to the subscriber, against `hwm_bytes`.
    public var queuedBytes: Int
    public var hwmBytes: Int?
    public var bytesFromPeer: UInt64
    public var bytesToPeer: UInt64
    /// Broker: messages queued to this subscriber, and messages it lost to `on_overflow = "drop"`.
    public var delivered: UInt64
    public var dropped: UInt64
    /// Broker: the subscriber's topics (printable, `\xNN` for other bytes).
    public var topics: [String]?

    public init(
        guardName: String, id: UInt64, peer: String, port: UInt16, state: String, ageSeconds: Double,
        queuedMessages: Int = 0, hwmMessages: Int? = nil, queuedBytes: Int = 0, hwmBytes: Int? = nil,
        bytesFromPeer: UInt64 = 0, bytesToPeer: UInt64 = 0, delivered: UInt64 = 0, dropped: UInt64 = 0,
        topics: [String]? = nil
    ) {
        self.guardName = guardName
        self.id = id
        self.peer = peer
        self.port = port
        self.state = state
        self.ageSeconds = ageSeconds
        self.queuedMessages = queuedMessages
        self.hwmMessages = hwmMessages
        self.queuedBytes = queuedBytes
        self.hwmBytes = hwmBytes
        self.bytesFromPeer = bytesFromPeer
        self.bytesToPeer = bytesToPeer
        self.delivered = delivered
        self.dropped = dropped
        self.topics = topics
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case id, peer, port, state, ageSeconds, queuedMessages, hwmMessages, queuedBytes, hwmBytes, bytesFromPeer
        case bytesToPeer, delivered, dropped, topics
    }
}
