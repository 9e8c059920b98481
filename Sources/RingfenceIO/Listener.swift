import Dispatch
import RingfenceSockets
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on one loop that hands each accepted connection to `onAccept`.
/// IPv6 listeners are IPv6-only, so that an IPv4 and an IPv6 listener can share a port and each
/// connection's original destination is read in its own family.
///
/// No SO_REUSEPORT: a port this process listens on cannot be bound by another process (a second
/// proxyd fails to start instead of silently sharing it). A listener made while another in this
/// process still listens on its address (a guard restarted by a reload) shares that socket
/// (see `ListenSockets`).
public final class Listener: @unchecked Sendable {
    /// The address listened on; for port 0, with the port the kernel picked.
    public private(set) var address: SocketAddress
    private var channel: Channel?

    /// Binds and listens at once (so a port in use fails here, loudly), then accepts on `loop`.
    /// - Parameter backlog: 4096 (the kernel's default `somaxconn`, which caps it): a rendezvous
    ///   of thousands of ranks connects at once, and a full queue drops SYNs for a second.
    /// - Parameter onAccept: called on `loop` with each new non-blocking socket and its peer; the
    ///   callee owns the socket, and closes it or hands it on.
    /// - Parameter onError: called on `loop` when accepting fails for want of resources; accepting
    ///   pauses for 100 ms each time.
    public init(
        address: SocketAddress, loop: EventLoop, backlog: Int32 = 4096,
        onError: @escaping (Errno) -> Void = { _ in },
        onAccept: @escaping (consuming Socket, SocketAddress) -> Void
    ) throws(Errno) {
        self.address = address
        let socket = try ListenSockets.shared.socket(for: address, owner: ObjectIdentifier(self)) { socket throws(Errno) in
            let fd = socket.fd
            // SO_REUSEADDR only: a restart need not wait for the old connections' TIME_WAIT.
            try Posix.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if address.family == AF_INET6 { try Posix.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
            try Posix.bind(fd, address)
            try Posix.listen(fd, backlog: backlog)
        }
        if address.port == 0, let bound = Posix.localAddress(socket.fd) { self.address = bound }
        let fd = socket.fd
        let pause = AcceptPause()
        let channel = Channel(
            socket: socket, loop: loop,
            onReadable: {
                // Bounded per wake-up so one busy listener cannot starve the loop.
                for _ in 0..<64 {
                    do throws(Errno) {
                        let accepted = try Posix.accept(fd)
                        switch consume accepted {
                        case .connection(let socket, let peer):
                            onAccept(socket, peer)
                        case .wouldBlock:
                            return
                        }
                    } catch {
                        // Out of descriptors (EMFILE, ENFILE) or memory: the pending connection stays
                        // queued and the socket readable, so a level-triggered source would spin.
                        // Stop accepting for a moment instead, and say so (docs/libdispatch.md §2).
                        if error == .tooManyOpenFiles || error == .tooManyOpenFilesInSystem || error == .noMemory
                            || error == .noBufferSpace
                        {
                            pause.pause(loop: loop, error: error, onError: onError)
                            return
                        }
                    }
                }
            },
            onWritable: {})
        pause.channel = channel
        self.channel = channel
        loop.execute { channel.setReading(true) }
    }

    deinit {
        // A listener dropped unclosed must not stay registered under a descriptor being closed.
        close()
    }

    /// Stops accepting and closes the socket.
    public func close() {
        guard let channel else { return }
        self.channel = nil
        ListenSockets.shared.remove(address, owner: ObjectIdentifier(self))
        channel.loop.execute { channel.close() }
    }
}

/// Why listening on a port failed: the address that could not be bound, and the error.
public struct ListenFailure: Error, Sendable {
    public let address: SocketAddress
    public let error: Errno
}

extension Listener {
    /// Listeners on `port` for every IPv4 and every IPv6 address, as a guard needs: on a host
    /// without IPv6 the IPv4 listener alone (`ipv6` false), any other failure closes what was
    /// made and throws.
    public static func anyAddress(
        port: UInt16, loop: EventLoop, onError: @escaping (Errno) -> Void,
        onAccept: @escaping (consuming Socket, SocketAddress) -> Void
    ) throws(ListenFailure) -> (listeners: [Listener], ipv6: Bool) {
        var listeners: [Listener] = []
        var ipv6 = true
        var port = port
        for v6 in [false, true] {
            // Port 0: the IPv4 listener's port, picked by the kernel, serves IPv6 too.
            let address = SocketAddress(address: v6 ? .v6(0) : .v4(0), port: port)
            do throws(Errno) {
                let listener = try Listener(address: address, loop: loop, onError: onError, onAccept: onAccept)
                port = listener.address.port
                listeners.append(listener)
            } catch {
                if !address.address.isIPv4 && (error == .addressFamilyNotSupported || error == .addressNotAvailable) {
                    ipv6 = false
                    continue
                }
                for listener in listeners { listener.close() }
                throw ListenFailure(address: address, error: error)
            }
        }
        return (listeners, ipv6)
    }
}

/// Pauses a listener's accepting for a moment. Confined to the listener's loop.
final class AcceptPause: @unchecked Sendable {
    weak var channel: Channel?

    func pause(loop: EventLoop, error: Errno, onError: (Errno) -> Void) {
        guard let channel, channel.isReading else { return }
        channel.setReading(false)
        onError(error)
        loop.queue.asyncAfter(deadline: .now() + .milliseconds(100)) { [weak channel] in
            channel?.setReading(true)
        }
    }
}
