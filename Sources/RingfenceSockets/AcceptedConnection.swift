/// A connection `Posix.accept` has just taken from a listening socket: the socket, which the
/// holder now owns, and the peer's address.
///
/// `~Copyable` because it holds a `Socket`: taking `socket` out of it (`consume`) hands the
/// ownership on, so an accepted connection has exactly one owner from `accept` to its close.
public struct AcceptedConnection: ~Copyable, Sendable {
    public var socket: Socket
    public let peer: SocketAddress

    public init(socket: consuming Socket, peer: SocketAddress) {
        self.socket = socket
        self.peer = peer
    }

    /// The socket, handed on: what a holder in another module does (it cannot take the field
    /// apart itself). Read `peer` first.
    public consuming func takeSocket() -> Socket {
        socket
    }
}
