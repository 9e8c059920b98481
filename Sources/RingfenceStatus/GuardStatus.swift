/// One running guard as `proxyctl status` shows it: what it is, whether its upstream is up, how
/// many connections it holds, and its counters.
public struct GuardStatus: Codable, Hashable, Sendable {
    /// The upstream link's state, for people and for alerts.
    public struct Upstream: Codable, Hashable, Sendable {
        public var state: UpstreamState
        /// `host:port`, when known.
        public var address: String?
        /// Broker (`on_overflow = "block"`): how long the engine has been held back now, because
        /// a subscriber's queue is full; nil when it is read.
        public var heldSeconds: Double?

        public init(state: UpstreamState, address: String?, heldSeconds: Double? = nil) {
            self.state = state
            self.address = address
            self.heldSeconds = heldSeconds
        }
    }

    public var name: String
    public var kind: GuardKind
    public var mode: GuardMode
    /// The guarded port (the first, for a firewall guard; 0 for the host guard).
    public var port: UInt16
    /// Every guarded port (none for the host guard, which fences every port but `publicPorts`).
    public var ports: [UInt16]
    /// The host guard's ports open to everyone.
    public var publicPorts: [UInt16]
    /// The local port the guarded port is redirected to.
    public var listenPort: UInt16
    public var state: GuardState
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
    /// Packets the kernel fence refused for this guard (enforce), and new flows it would have
    /// refused (audit), since the table was made; read from the table's counters.
    public var fenceRefused: UInt64
    public var fenceAudited: UInt64
    /// A discovered XPUB's broker: connections from other hosts straight to the engine's port,
    /// made before the redirect was live. Nil for every other guard.
    public var directConnections: Int?

    public init(
        name: String, kind: GuardKind, port: UInt16, listenPort: UInt16, state: GuardState, upstream: Upstream,
        connections: Int, maxConnections: Int, queuedMessages: Int, queuedBytes: Int, counters: GuardCounters,
        mode: GuardMode = .enforce, ports: [UInt16]? = nil, publicPorts: [UInt16] = [], fenceRefused: UInt64 = 0,
        fenceAudited: UInt64 = 0
    ) {
        self.name = name
        self.kind = kind
        self.mode = mode
        self.port = port
        self.ports = ports ?? [port]
        self.publicPorts = publicPorts
        self.fenceRefused = fenceRefused
        self.fenceAudited = fenceAudited
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
