/// What `Posix.accept` took from a listening socket: a connection — its socket, which the
/// caller now owns, and the peer's address — or nothing yet (EAGAIN).
///
/// An enum rather than a `~Copyable` struct holding both: a `switch consume` hands the socket
/// on whole, with no partial consumption of a struct from another module (which this module
/// would have to allow with a consuming accessor, and which Swift 6.3 miscompiles at -Onone:
/// an unaligned vector load of the struct).
public enum Accepted: ~Copyable, Sendable {
    case connection(Socket, peer: SocketAddress)
    case wouldBlock
}
