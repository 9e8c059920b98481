/// The limits of a `kind = "tcp"` guard: the transparent relay and its optional TCPStore gate.
/// Every default here is documented in docs/policy.md.
public struct RelaySettings: Hashable, Sendable {
    /// What the relay understands of the byte stream.
    public enum AppProtocol: String, Hashable, Sendable, CaseIterable {
        /// Bytes only.
        case none
        /// PyTorch's TCPStore: VALIDATE first, then framed, size-capped commands.
        case tcpstore
    }

    /// The relay's own port, reachable only through the redirect. Default: `port + 10000`.
    public var listenPort: UInt16
    /// Where to connect; nil means the connection's original destination.
    public var upstream: Endpoint?
    /// Room for a 4,096-rank job's TCPStore clients (one connection each, and each node's
    /// torchrun agent) twice over; an idle connection costs two descriptors (docs/relay-sizing.md).
    public var maxConnections = 8192
    public var maxConnectionsPerPeer = 64
    /// New connections per second that one peer may open.
    public var acceptRatePerPeer = 50
    /// Bytes buffered per direction per connection before the relay stops reading that side.
    public var bufferBytes = ByteSize.mebibytes(1)
    public var connectTimeout = Duration.seconds(5)
    /// Zero means no idle limit: TCPStore clients sit idle for hours between barriers.
    public var idleTimeout = Duration.zero
    public var appProtocol = AppProtocol.none
    /// After bytes move on a connection, how long the relay keeps polling that connection itself
    /// instead of sleeping until Dispatch wakes it. A request/response protocol's next message is
    /// then picked up without a thread wake-up, which on a small VM costs more than the relaying
    /// itself; the price is up to this much CPU after each burst. Zero turns it off.
    /// Default: `defaultTCPStoreBusyPoll` with `protocol = "tcpstore"`, zero otherwise.
    public var busyPoll = Duration.zero
    public static let defaultTCPStoreBusyPoll = Duration.microseconds(200)
    /// The most `busy_poll` may be, for relay and broker guards alike: past this, polling (by
    /// spinning or by waiting in ppoll) buys nothing Dispatch's own wake-ups would not.
    public static let maxBusyPoll = Duration.milliseconds(10)
    /// TCPStore only: VALIDATE must arrive within this time.
    public var handshakeTimeout = Duration.seconds(5)
    /// TCPStore only: a command must arrive whole within this time once begun (slowloris).
    public var partialTimeout = Duration.seconds(10)
    /// TCPStore only; below the libuv backend's own 8192 B.
    public var maxKeyBytes = ByteSize.kibibytes(4)
    /// TCPStore only; below the libuv backend's own 8 MiB.
    public var maxValueBytes = ByteSize.mebibytes(4)
    /// TCPStore only: keys in one multi-key command; below the backend's own 131072.
    public var maxKeys = 16384

    public init(listenPort: UInt16) { self.listenPort = listenPort }
}
