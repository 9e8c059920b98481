import RingfenceIO
import RingfenceSockets

/// Reads an accepted socket's original destination (the socket, borrowed; its address family),
/// the address the peer dialled before the kernel's redirect; nil when it was not redirected.
public typealias OriginalDestination = @Sendable (borrowing Socket, Int32) -> SocketAddress?

/// The kernel's answer: SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6).
public let kernelOriginalDestination: OriginalDestination = { socket, family in
    Posix.originalDestination(socket.fd, family: family)
}
