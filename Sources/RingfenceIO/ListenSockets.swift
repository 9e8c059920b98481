import RingfenceSockets
import SystemPackage
import Synchronization

/// The TCP listening sockets this process has open, by address, so that a listener replacing
/// another on the same address shares its socket instead of binding the port a second time.
///
/// A reload starts a restarted guard before it stops the old one (a guard that cannot start
/// then leaves the old one serving), and a listener holds its port until its source's
/// cancellation has run (docs/libdispatch.md §5), so for a moment two listeners want one port.
/// SO_REUSEPORT allowed that, but it also let any other process — a second proxyd — bind the
/// same port and silently take a share of its connections. Instead the successor takes a
/// duplicate (dup) of its predecessor's descriptor: one socket, one accept queue (no connection
/// queued at the old listener is lost when it closes), and a port no other process can bind.
final class ListenSockets: Sendable {
    static let shared = ListenSockets()

    /// The open listeners' descriptors by address, and by listener.
    private let open = Mutex<[SocketAddress: [ObjectIdentifier: Int32]]>([:])

    /// A listening socket for `address`: a duplicate of one this process already has open there,
    /// else a new socket that `bind` binds and listens; `owner` is registered with it either way,
    /// under the address bound. Port 0 always makes a new socket on a port the kernel picks.
    func socket(
        for address: SocketAddress, owner: ObjectIdentifier, bind: (borrowing Socket) throws(Errno) -> Void
    ) throws(Errno) -> Socket {
        try open.withLock { open throws(Errno) -> Socket in
            let socket: Socket
            var bound = address
            if address.port != 0, let existing = open[address]?.values.first {
                socket = try Posix.duplicate(existing)
            } else {
                socket = try Socket.tcp(family: address.family)
                do throws(Errno) {
                    try bind(socket)
                } catch {
                    socket.close()
                    throw error
                }
                if address.port == 0, let local = Posix.localAddress(socket.fd) { bound.port = local.port }
            }
            open[bound, default: [:]][owner] = socket.fd
            return socket
        }
    }

    /// Forgets `owner`'s socket: call before closing it, so that no successor duplicates a
    /// descriptor being closed.
    func remove(_ address: SocketAddress, owner: ObjectIdentifier) {
        open.withLock { open in
            open[address]?[owner] = nil
            if open[address]?.isEmpty == true { open[address] = nil }
        }
    }
}
