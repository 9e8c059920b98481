import CZeroMQ

#if canImport(Glibc)
import Glibc
#endif

/// A failed libzmq call in a test, with `zmq_strerror`.
public struct LibzmqFailure: Error, CustomStringConvertible {
    public var description: String

    public init(_ call: String) {
        let code = zmq_errno()
        description = "\(call) failed: \(String(cString: zmq_strerror(code))) (errno \(code))"
    }
}

/// A libzmq 4.3.4 context and one socket, driven through the C API, with linger 0 and 2-second send
/// and receive timeouts so no call can hang; closed (socket, then context) on deinit.
public final class LibzmqSocket {
    private let context: UnsafeMutableRawPointer
    public let socket: UnsafeMutableRawPointer

    public init(type: Int32) throws {
        guard let context = zmq_ctx_new() else { throw LibzmqFailure("zmq_ctx_new") }
        guard let socket = zmq_socket(context, type) else {
            zmq_ctx_term(context)
            throw LibzmqFailure("zmq_socket")
        }
        self.context = context
        self.socket = socket
        try set(ZMQ_LINGER, 0)
        try set(ZMQ_RCVTIMEO, 2000)
        try set(ZMQ_SNDTIMEO, 2000)
    }

    deinit {
        zmq_close(socket)
        zmq_ctx_term(context)
    }

    /// Sets an integer option.
    public func set(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw LibzmqFailure("zmq_setsockopt(\(option))")
        }
    }

    /// Sets a binary option (e.g. `ZMQ_SUBSCRIBE`).
    public func set(_ option: Int32, bytes: [UInt8]) throws {
        let result = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
        guard result == 0 else { throw LibzmqFailure("zmq_setsockopt(\(option))") }
    }

    /// Binds to 127.0.0.1 on a port the kernel picks; returns the port (from `ZMQ_LAST_ENDPOINT`).
    public func bindLoopback() throws -> UInt16 {
        guard zmq_bind(socket, "tcp://127.0.0.1:*") == 0 else { throw LibzmqFailure("zmq_bind") }
        return try Self.boundPort(socket)
    }

    /// The port of the TCP endpoint `socket` last bound (from `ZMQ_LAST_ENDPOINT`).
    public static func boundPort(_ socket: UnsafeMutableRawPointer) throws -> UInt16 {
        var endpoint = [CChar](repeating: 0, count: 256)
        var length = endpoint.count
        guard zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, &endpoint, &length) == 0 else {
            throw LibzmqFailure("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        }
        let text = String(decoding: endpoint.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw LibzmqFailure("parsing endpoint \(text)")
        }
        return port
    }

    /// Connects to 127.0.0.1:`port`.
    public func connectLoopback(port: UInt16) throws {
        guard zmq_connect(socket, "tcp://127.0.0.1:\(port)") == 0 else { throw LibzmqFailure("zmq_connect") }
    }

    /// Sends one frame, with `ZMQ_SNDMORE` when `more`.
    public func send(_ bytes: [UInt8], more: Bool = false) throws {
        let result = bytes.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, more ? ZMQ_SNDMORE : 0) }
        guard result == bytes.count else { throw LibzmqFailure("zmq_send") }
    }

    /// Receives one frame (bounded by the 2-second receive timeout).
    public func receive() throws -> (body: [UInt8], more: Bool) {
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        let count = zmq_msg_recv(&message, socket, 0)
        guard count >= 0 else { throw LibzmqFailure("zmq_msg_recv") }
        let body = Array(UnsafeRawBufferPointer(start: zmq_msg_data(&message), count: Int(count)))
        return (body, zmq_msg_more(&message) != 0)
    }
}
