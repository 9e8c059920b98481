import Dispatch
import Logging
import RingfenceAddresses
import RingfenceIO
import RingfenceStatus
import RingfenceSockets
import Testing

@testable import RingfenceControlServer

#if canImport(Glibc)
import Glibc
#endif

/// `/metrics` over real TCP on loopback.
@Suite(.serialized) struct MetricsServerTests {
    static func serve(timeout: Duration = .seconds(5), maxClients: Int = 64) throws -> (MetricsServer, UInt16) {
        for _ in 0..<20 {
            let port = UInt16.random(in: 40000...60000)
            if let server = try? MetricsServer(
                address: SocketAddress(address: IPAddress("127.0.0.1")!, port: port), loop: EventLoop(index: 0),
                logger: Logger(label: "test"), requestTimeout: timeout, maxClients: maxClients, render: { "ringfence_x 1\n" })
            {
                return (server, port)
            }
        }
        throw NoFreePort()
    }

    static func request(_ port: UInt16, _ text: String) throws -> String {
        let fd = try connected(port)
        defer { close(fd) }
        return exchange(on: fd, Array(text.utf8), halfClose: false)
    }

    /// A TCP connection to 127.0.0.1:PORT; the caller closes it.
    static func connected(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 { close(fd) }
        try #require(connected == 0)
        return fd
    }

    @Test func servesMetricsAndRefusesEverythingElse() throws {
        let (server, port) = try Self.serve()
        defer { server.close() }
        let ok = try Self.request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(ok.hasSuffix("\r\n\r\nringfence_x 1\n") && ok.contains("Content-Length: 14\r\n"))
        #expect(try Self.request(port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        #expect(try Self.request(port, "GET /other HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 404"))
        #expect(try Self.request(port, "POST /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 405"))
        #expect(try Self.request(port, "\u{16}\u{03}\u{01} garbage\r\n\r\n").hasPrefix("HTTP/1.1 400"))
        let huge = "GET /metrics HTTP/1.1\r\n" + String(repeating: "X-Pad: \(String(repeating: "a", count: 1000))\r\n", count: 20)
        #expect(try Self.request(port, huge).hasPrefix("HTTP/1.1 431"))
        #expect(try Self.request(port, "GET /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
    }

    @Test func aSilentClientGetsATimeoutAndOthersAreServed() throws {
        let (server, port) = try Self.serve(timeout: .milliseconds(300))
        defer { server.close() }
        let began = ContinuousClock.now
        let silent = Background { try? Self.request(port, "") }
        #expect(try Self.request(port, "GET /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        #expect(silent.join()?.hasPrefix("HTTP/1.1 408") == true)
        #expect(ContinuousClock.now - began < .seconds(4))
    }

    /// Scrapers that reconnect at once fill the cap with answered connections whose FIN is on
    /// its way; a new scrape takes the place of the oldest of them rather than being reset.
    @Test func answeredConnectionsGiveTheirPlaceToNewOnesAtTheCap() throws {
        let (server, port) = try Self.serve(maxClients: 2)
        defer { server.close() }
        var answered: [Int32] = []
        defer { answered.forEach { _ = close($0) } }
        for _ in 0..<2 {
            let fd = try Self.connected(port)
            answered.append(fd)  // read to the end, never closed: the server holds it, answered
            #expect(exchange(on: fd, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8), halfClose: false).hasPrefix("HTTP/1.1 200"))
        }
        for _ in 0..<3 {
            #expect(try Self.request(port, "GET /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
        }
    }
}

struct NoFreePort: Error {}

/// The silent client's reply, taken on another thread (it blocks until the server gives up).
final class Background: @unchecked Sendable {
    private var reply: String?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> String?) {
        DispatchQueue.global().async {
            self.reply = body()
            self.done.signal()
        }
    }

    func join() -> String? {
        done.wait()
        return reply
    }
}
