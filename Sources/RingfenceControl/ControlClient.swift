import RingfenceSockets
import SystemPackage

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
        let socket = try connect(path)
        let fd = socket.fd
        let exchanged = Result { () throws(ControlClientError) in
            try exchange(ControlCodec.encode(request), on: fd, path: path, timeout: timeout)
        }
        socket.close()
        let reply = try exchanged.get()
        guard !reply.isEmpty else { throw .badReply(path, "the daemon closed the connection without a reply") }
        do throws(ControlError) {
            return try ControlCodec.decode(ControlReply.self, from: reply)
        } catch {
            throw .badReply(path, error.message)
        }
    }

    private static func connect(_ path: String) throws(ControlClientError) -> Socket {
        do throws(Errno) {
            return try Posix.unixConnect(path: path)
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
    }

    /// Sends the whole request, half-closes, and reads the reply to its end (at most 256 MiB).
    private static func exchange(
        _ bytes: [UInt8], on fd: Int32, path: String, timeout: Duration
    ) throws(ControlClientError) -> [UInt8] {
        Posix.setReceiveTimeout(fd, timeout)
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        do throws(Errno) {
            var offset = 0
            while offset < bytes.count {
                // A blocking socket without a send timeout: it never reports `.wouldBlock`.
                let written = bytes[offset...].withUnsafeBytes { buffer in
                    Result { () throws(Errno) in try Posix.write(fd, from: buffer) }
                }
                if case .done(let sent) = try written.get() { offset += sent }
            }
            Posix.shutdownWrite(fd)
            while true {
                // SO_RCVTIMEO: `.wouldBlock` means no reply within `timeout`.
                let read = chunk.withUnsafeMutableBytes { buffer in
                    Result { () throws(Errno) in try Posix.read(fd, into: buffer) }
                }
                guard case .done(let count) = try read.get() else { break }
                if count == 0 { return reply }
                reply.append(contentsOf: chunk[..<count])
                guard reply.count <= 256 << 20 else { break }
            }
        } catch {
            throw .io(path, error)
        }
        if reply.count > 256 << 20 { throw .badReply(path, "over 256 MiB") }
        throw .timeout(path, timeout)
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
