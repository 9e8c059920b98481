import Logging
import RingfenceControl
import RingfenceIO
import RingfenceStatus
import RingfenceSockets
import Testing

@testable import RingfenceControlServer

#if canImport(Glibc)
import Glibc
#endif

/// The control socket over a real Unix socket: one request, one reply; bad input gets an error
/// reply and the server carries on.
@Suite(.serialized) struct ControlServerTests {
    static func path() -> String { "/tmp/rf-ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock" }

    static func server(_ path: String, timeout: Duration = .seconds(5)) throws -> ControlServer {
        try ControlServer(
            path: path, loop: EventLoop(index: 0), logger: Logger(label: "test"), requestTimeout: timeout
        ) { request, _, reply in
            reply(ControlReply(ok: true, peers: request.command == .peers ? [] : nil))
        }
    }

    /// Sends raw bytes (optionally half-closing) and reads the reply to EOF.
    static func exchange(_ path: String, _ bytes: [UInt8], halfClose: Bool = true) throws -> String {
        let fd = try Posix.unixConnect(path: path).release()
        defer { close(fd) }
        return RingfenceControlServerTests.exchange(on: fd, bytes, halfClose: halfClose)
    }

    @Test func answersOneRequestAndMakesTheSocketPrivate() throws {
        let path = Self.path()
        let server = try Self.server(path)
        defer { server.close() }
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        let reply = try ControlClient.send(ControlRequest(command: .peers), to: path)
        #expect(reply.ok && reply.peers == [])
    }

    @Test func badInputGetsErrorRepliesAndTheServerCarriesOn() throws {
        let path = Self.path()
        let server = try Self.server(path)
        defer { server.close() }
        #expect(try Self.exchange(path, Array("garbage\n".utf8)).contains(#""code":"bad-request""#))
        #expect(try Self.exchange(path, []).contains(#""code":"bad-request""#))
        #expect(try Self.exchange(path, Array(#"{"version":9,"command":"status"}"#.utf8)).contains("unsupported-version"))
        let huge = [UInt8](repeating: 0x61, count: 200 << 10)
        #expect(try Self.exchange(path, huge).contains(#""code":"too-large""#))
        #expect(try ControlClient.send(ControlRequest(command: .status), to: path).ok)
    }

    @Test func aSilentClientTimesOutWithoutBlockingOthers() throws {
        let path = Self.path()
        let server = try Self.server(path, timeout: .milliseconds(400))
        defer { server.close() }
        let silent = try Posix.unixConnect(path: path).release()
        defer { close(silent) }
        #expect(try ControlClient.send(ControlRequest(command: .status), to: path).ok)
        Posix.setReceiveTimeout(silent, .seconds(3))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(silent, $0.baseAddress, $0.count, 0) }
        #expect(count > 0 && String(decoding: buffer[..<max(0, count)], as: UTF8.self).contains(#""code":"timeout""#))
    }

    @Test func aLiveSocketIsNotTakenOverButAStaleOneIs() throws {
        let path = Self.path()
        let first = try Self.server(path)
        #expect(throws: ControlServerError.self) { _ = try Self.server(path) }
        first.close()
        // A socket file nobody listens on (a daemon that was killed) is replaced.
        let fd = try Posix.unixListen(path: path, mode: 0o600).release()
        close(fd)
        let second = try Self.server(path)
        defer { second.close() }
        #expect(try ControlClient.send(ControlRequest(command: .status), to: path).ok)
    }

    @Test func noDaemonIsAClearError() {
        #expect {
            _ = try ControlClient.send(ControlRequest(command: .status), to: "/tmp/rf-none-\(getpid()).sock")
        } throws: { error in
            "\(error)".contains("proxyd is not running")
        }
    }
}
