import CRingfenceLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Unix stream sockets, for the control socket: listening on a path with a mode, connecting,
/// and the credentials of the process at the other end. Part of `Posix`, the one place
/// Ringfence makes socket syscalls.
extension Posix {
    /// Who is at the other end of a Unix socket (SO_PEERCRED, taken at connect).
    public struct PeerCredentials: Hashable, Sendable {
        public var pid: Int32
        public var uid: UInt32
        public var gid: UInt32
    }

    /// The longest path `sockaddr_un` takes, without its terminating NUL.
    public static let maxUnixPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// A non-blocking, close-on-exec Unix stream socket listening on `path` with file mode
    /// `mode`. The mode is set on the socket before `bind`, so the path never exists with a
    /// wider one.
    public static func unixListen(path: String, mode: mode_t, backlog: Int32 = 64) throws(Errno) -> Socket {
        var address = try unixAddress(path)
        let socket = try Socket.make(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        do throws(Errno) {
            let fd = socket.fd
            _ = try must { fchmod(fd, mode) }
            _ = try must {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
            _ = try must { chmod(path, mode) }
            try listen(fd, backlog: backlog)
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// A blocking, close-on-exec Unix stream socket connected to `path`.
    public static func unixConnect(path: String) throws(Errno) -> Socket {
        var address = try unixAddress(path)
        let socket = try Socket.make(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        do throws(Errno) {
            let fd = socket.fd
            _ = try must {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
            }
        } catch {
            socket.close()
            throw error
        }
        return socket
    }

    /// Accepts one connection on a Unix listener as a non-blocking, close-on-exec socket.
    public static func acceptUnix(_ fd: Int32) throws(Errno) -> IOResult<Socket> {
        switch try call({ Int(CRingfenceLinux_accept4(fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))) }) {
        case .done(let accepted): return .done(Socket(adopting: Int32(accepted)))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// The credentials of the process that connected `fd`, or nil if the kernel will not say.
    public static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        var credentials = PeerCredentials(pid: 0, uid: 0, gid: 0)
        guard CRingfenceLinux_peerCredentials(fd, &credentials.pid, &credentials.uid, &credentials.gid) == 0 else {
            return nil
        }
        return credentials
    }

    /// Sets how long a blocking read on `fd` waits (SO_RCVTIMEO).
    public static func setReceiveTimeout(_ fd: Int32, _ timeout: Duration) {
        var value = timeval(
            tv_sec: Int(timeout.components.seconds),
            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends one datagram to the Unix datagram socket at `path` (a leading `@`: an abstract
    /// socket), from a socket made and closed for it: what sd_notify(3) does.
    public static func sendDatagram(_ bytes: [UInt8], toUnixPath path: String) throws(Errno) {
        var address = try unixAddress(path)
        var length = MemoryLayout<sockaddr_un>.size
        if path.hasPrefix("@") {
            withUnsafeMutableBytes(of: &address.sun_path) { $0[0] = 0 }
            // An abstract name is exactly its bytes: no trailing NULs count.
            length = MemoryLayout<sa_family_t>.size + path.utf8.count
        }
        let socket = try Socket.make(family: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        let fd = socket.fd
        let sent = Result { () throws(Errno) in
            try must {
                bytes.withUnsafeBytes { buffer in
                    withUnsafePointer(to: &address) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            Int32(sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, socklen_t(length)))
                        }
                    }
                }
            }
        }
        socket.close()
        _ = try sent.get()
    }

    private static func unixAddress(_ path: String) throws(Errno) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxUnixPathBytes, !bytes.contains(0) else { throw .invalidArgument }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        return address
    }
}
