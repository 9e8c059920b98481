import RingfenceTCPStore

/// What a relay guard's sessions read of its settings, in the units they use: buffers, timeouts,
/// the protocol gate and `busy_poll`. The daemon maps a policy's `kind = "tcp"` guard to these.
///
/// A session reads the buffers, the gate's limits and `busy_poll` once, when it starts, so a
/// reload never lands between two reads of one connect; the timeouts are read once per deadline
/// sweep (a reload's new timeouts apply to live connections at the next sweep, as documented).
public struct RelayLimits: Hashable, Sendable {
    /// What the relay understands of the byte stream.
    public enum AppProtocol: String, Hashable, Sendable {
        /// Bytes only.
        case none
        /// PyTorch's TCPStore, behind the gate.
        case tcpstore
    }

    /// Bytes buffered per direction per connection before the relay stops reading that side.
    public var bufferBytes: Int
    public var connectTimeout: Duration
    /// Zero means no idle limit.
    public var idleTimeout: Duration
    public var appProtocol: AppProtocol
    /// How long the relay keeps polling a connection itself after bytes move; zero turns it off.
    public var busyPoll: Duration
    /// TCPStore only: VALIDATE must arrive within this time.
    public var handshakeTimeout: Duration
    /// TCPStore only: a command must arrive whole within this time once begun.
    public var partialTimeout: Duration
    /// TCPStore only: the gate's caps.
    public var tcpstore: TCPStoreLimits

    public init(
        bufferBytes: Int, connectTimeout: Duration, idleTimeout: Duration, appProtocol: AppProtocol,
        busyPoll: Duration, handshakeTimeout: Duration, partialTimeout: Duration, tcpstore: TCPStoreLimits
    ) {
        self.bufferBytes = bufferBytes
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.appProtocol = appProtocol
        self.busyPoll = busyPoll
        self.handshakeTimeout = handshakeTimeout
        self.partialTimeout = partialTimeout
        self.tcpstore = tcpstore
    }
}
