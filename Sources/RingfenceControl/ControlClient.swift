import RingfenceIO
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// `proxyctl`'s side of the control socket: connect, send one request, read the one reply.
/// Blocking; a command-line tool has nothing else to do meanwhile.
public enum ControlClient {
    /// Sends `request` to the daemon at `path` and returns its reply.
    /// - Parameter timeout: how long to wait for the reply (a reload of a large policy takes a
    ///   moment).
    /// - Throws: `ControlClientError`, worded for the person at the terminal.
    public static func send(
        _ request: ControlRequest, to path: String, timeout: Duration = .seconds(60)
    ) throws(ControlClientError) -> ControlReply {
        let fd: Int32
        do throws(Errno) {
            fd = try Posix.unixConnect(path: path)
        } catch {
            switch error {
            case .noSuchFileOrDirectory, .connectionRefused, .notDirectory:
                throw .notRunning(path)
            case .permissionDenied, .notPermitted:
                throw .notPermitted(path)
            default:
                throw .io(path, error)
            }
        }
        defer { Posix.close(fd) }
        Posix.setReceiveTimeout(fd, timeout)
        let bytes = ControlCodec.encode(request)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw .io(path, Errno(rawValue: errno)) }
        shutdown(fd, Int32(SHUT_WR))
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout(path, timeout) }
                throw .io(path, Errno(rawValue: errno))
            }
            reply.append(contentsOf: chunk[..<count])
            guard reply.count <= 256 << 20 else { throw .badReply(path, "over 256 MiB") }
        }
        guard !reply.isEmpty else { throw .badReply(path, "the daemon closed the connection without a reply") }
        do throws(ControlError) {
            return try ControlCodec.decode(ControlReply.self, from: reply)
        } catch {
            throw .badReply(path, error.message)
        }
    }
}

/// Why `proxyctl` got no reply, worded for the person at the terminal.
public enum ControlClientError: Error, Sendable, CustomStringConvertible {
    case notRunning(String)
    case notPermitted(String)
    case timeout(String, Duration)
    case io(String, Errno)
    case badReply(String, String)

    public var description: String {
        switch self {
        case .notRunning(let path):
            return "proxyd is not running: nothing listens on \(path) (start proxyd, or pass --control-socket)"
        case .notPermitted(let path):
            return "not permitted to use \(path): run proxyctl as root or as the user proxyd runs as"
        case .timeout(let path, let timeout):
            return "no reply from proxyd on \(path) within \(timeout)"
        case .io(let path, let error):
            return "talking to proxyd on \(path) failed: \(error)"
        case .badReply(let path, let detail):
            return "proxyd on \(path) sent an unreadable reply: \(detail)"
        }
    }
}
