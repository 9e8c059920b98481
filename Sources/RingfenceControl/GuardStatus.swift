/// One running guard as `proxyctl status` shows it: what it is, whether its upstream is up, how
/// many connections it holds, and its counters.
public struct GuardStatus: Codable, Hashable, Sendable {
    /// The upstream link's state, for people and for alerts.
    public struct Upstream: Codable, Hashable, Sendable {
        /// `connected`, `connecting`, `waiting` (backing off after a failure), `idle` (the broker
        /// learns its upstream from the first subscriber's original destination), or
        /// `per-connection` (a relay connects upstream once per client).
        public var state: String
        /// `host:port`, when known.
        public var address: String?

        public init(state: String, address: String?) {
            self.state = state
            self.address = address
        }
    }

    public var name: String
    /// `tcp` or `zmq-xpub`.
    public var kind: String
    /// The guarded port.
    public var port: UInt16
    /// The local port the guarded port is redirected to.
    public var listenPort: UInt16
    /// `running`.
    public var state: String
    public var upstream: Upstream
    /// Live connections (relay: clients; broker: subscribers, handshaking or active).
    public var connections: Int
    /// The cap on `connections` (`max_connections`, `max_subscribers`).
    public var maxConnections: Int
    /// Broker: messages queued to subscribers right now, summed; relay: 0.
    public var queuedMessages: Int
    /// Bytes queued to peers right now, summed (broker) or buffered in pipes (relay: 0, not known).
    public var queuedBytes: Int
    public var counters: GuardCounters

    public init(
        name: String, kind: String, port: UInt16, listenPort: UInt16, state: String, upstream: Upstream,
        connections: Int, maxConnections: Int, queuedMessages: Int, queuedBytes: Int, counters: GuardCounters
    ) {
        self.name = name
        self.kind = kind
        self.port = port
        self.listenPort = listenPort
        self.state = state
        self.upstream = upstream
        self.connections = connections
        self.maxConnections = maxConnections
        self.queuedMessages = queuedMessages
        self.queuedBytes = queuedBytes
        self.counters = counters
    }
}
