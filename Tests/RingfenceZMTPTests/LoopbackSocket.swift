#if canImport(Glibc)
import Glibc
#endif

@testable import RingfenceZMTP

/// A failed socket call in a test, with its errno.
struct SocketFailure: Error, CustomStringConvertible {
    var description: String

    init(_ call: String, errno code: Int32 = errno) {
        description = "\(call) failed: \(String(cString: strerror(code))) (errno \(code))"
    }
}

/// A blocking TCP socket on 127.0.0.1 for tests, owning its descriptor; every receive, send and accept
/// is bounded by `timeoutSeconds`, so a broken peer fails the test instead of hanging it.
final class LoopbackSocket {
    let descriptor: Int32
    /// Bytes received but not consumed yet by `nextFrame`.
    private var buffered: [UInt8] = []

    private init(descriptor: Int32, timeoutSeconds: Int = 2) throws {
        self.descriptor = descriptor
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(descriptor, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw SocketFailure("setsockopt")
            }
        }
    }

    deinit { close(descriptor) }

    /// A fresh TCP socket.
    private static func makeDescriptor() throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SocketFailure("socket") }
        return descriptor
    }

    /// 127.0.0.1:`port`.
    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// Connects to 127.0.0.1:`port`.
    static func connect(port: UInt16) throws -> LoopbackSocket {
        let socket = try LoopbackSocket(descriptor: makeDescriptor())
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw SocketFailure("connect") }
        return socket
    }

    /// Listens on 127.0.0.1 on a port the kernel picks; returns the socket and the port.
    static func listen() throws -> (LoopbackSocket, port: UInt16) {
        let socket = try LoopbackSocket(descriptor: makeDescriptor())
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(socket.descriptor, $0, length) == 0 && getsockname(socket.descriptor, $0, &length) == 0
            }
        }
        guard bound, Glibc.listen(socket.descriptor, 4) == 0 else { throw SocketFailure("bind/listen") }
        return (socket, UInt16(bigEndian: address.sin_port))
    }

    /// Accepts one connection (bounded by the receive timeout, which Linux applies to accept).
    func accept() throws -> LoopbackSocket {
        let accepted = Glibc.accept(descriptor, nil, nil)
        guard accepted >= 0 else { throw SocketFailure("accept") }
        return try LoopbackSocket(descriptor: accepted)
    }

    /// Sends all of `bytes`.
    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { throw SocketFailure("send") }
            sent += count
        }
    }

    /// Receives what is available (at least one byte); throws on timeout or end of stream.
    func receive() throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 64 * 1024)
        let count = bytes.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else {
            if count == 0 { throw SocketFailure("recv (peer closed)", errno: 0) }
            throw SocketFailure("recv")
        }
        return Array(bytes[..<count])
    }

    /// Receives until the peer closes; returns everything received. Throws on timeout or error, so a
    /// close is told apart from silence.
    func receiveUntilClosed() throws -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return received }
            // A reset after unread data is a close too.
            if count < 0, errno == ECONNRESET { return received }
            guard count > 0 else { throw SocketFailure("recv") }
            received += chunk[..<count]
        }
    }

    /// Runs the NULL handshake as `localType`: sends our opening at once, feeds replies until done, and
    /// keeps the bytes after the peer's READY for `nextFrame`.
    func handshake(as localType: SocketType, minor: UInt8 = 1) throws -> Handshake {
        var handshake = Handshake(localType: localType, minor: minor)
        try send(handshake.opening)
        while handshake.state != .done {
            let chunk = try receive()
            let used = try handshake.feed(chunk)
            buffered = Array(chunk[used...])
        }
        return handshake
    }

    /// Receives the next whole frame, decoding its header with `FrameHeader.parse`.
    func nextFrame(maxSize: UInt64 = 4 << 20) throws -> (header: FrameHeader, body: [UInt8]) {
        while true {
            let header = try onBytes(buffered) { bytes throws(ZMTPError) in try FrameHeader.parse(bytes, maxSize: maxSize) }
            if let header, buffered.count >= header.encodedCount + Int(header.size) {
                let end = header.encodedCount + Int(header.size)
                let body = Array(buffered[header.encodedCount..<end])
                buffered.removeFirst(end)
                return (header, body)
            }
            buffered += try receive()
        }
    }
}
