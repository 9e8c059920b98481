import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceTCPStore
import RingfenceTestSupport
import Testing

@testable import RingfenceRelay

#if canImport(Glibc)
import Glibc
#endif

/// A relay guard end to end on loopback: client → relay (fixed upstream) → an echo server.
@Suite struct RelayGuardTests {
    static let limits = RelayLimits(
        bufferBytes: 64 << 10, connectTimeout: .seconds(5), idleTimeout: .zero, appProtocol: .none,
        busyPoll: .zero, handshakeTimeout: .seconds(5), partialTimeout: .seconds(10),
        tcpstore: TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 4 << 20, maxKeys: 16384))

    static func settings(upstream: UInt16, allow: String = "127.0.0.0/8") -> RelayGuardSettings {
        let listenPort = LoopbackClient.freePort()
        return RelayGuardSettings(
            frontEnd: FrontEndSettings(
                name: "store", kind: .tcp, port: 29500, listenPort: listenPort,
                allow: AddressSet([try! CIDR(parsing: allow)]),
                limits: Admission.Limits(maxConnections: 8, maxConnectionsPerPeer: 8, acceptRatePerPeer: 100),
                upstream: HostPort(host: "127.0.0.1", port: upstream)),
            relay: limits)
    }

    /// Loopback connections carry no original destination; this one says 10.9.9.9:29500.
    static let redirected: OriginalDestination = { _, _ in SocketAddress(address: .v4(0x0A09_0909), port: 29500) }

    /// A started relay to `echo`, its settings, and a client connected to it.
    static func relaying(
        to echo: EchoServer, loops: Int = 2, destination: @escaping OriginalDestination = redirected
    ) throws -> (RelayGuard, RelayGuardSettings, Int32) {
        let settings = Self.settings(upstream: echo.port)
        let relay = try RelayGuard(
            settings, group: EventLoopGroup(count: loops), logger: Logger(label: "test"), originalDestination: destination)
        try relay.start()
        return (relay, settings, LoopbackClient.connect(to: settings.frontEnd.listenPort))
    }

    static func wait(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<300 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        return condition()
    }

    @Test func bytesGoThroughTheRelayToTheUpstreamAndBack() async throws {
        let echo = EchoServer()
        defer { echo.close() }
        let (relay, _, client) = try Self.relaying(to: echo)
        defer { relay.stop() }
        // Closed once, below (the client leaving is part of the test), or here if it failed
        // before: a second close of a number another test may have been given since would
        // close that test's descriptor (tests run in parallel).
        var clientOpen = true
        defer { if clientOpen { close(client) } }
        let message = Array("hello through the relay".utf8)
        #expect(send(client, message, message.count, 0) == message.count)
        var reply = [UInt8](repeating: 0, count: 64)
        let count = recv(client, &reply, message.count, Int32(MSG_WAITALL))
        #expect(Array(reply[..<max(0, count)]) == message)
        let snapshot = relay.snapshot()
        #expect(snapshot.status.kind == .tcp && snapshot.status.state == .running)
        #expect(snapshot.status.upstream.state == .perConnection)
        #expect(snapshot.status.upstream.address == "127.0.0.1:\(echo.port)")
        #expect(snapshot.connections.map(\.state) == ["relaying"])
        #expect(try await Self.wait { relay.snapshot().status.counters.bytesFromPeers == UInt64(message.count) })
        // The client leaves: the session ends and its counters stay.
        close(client)
        clientOpen = false
        #expect(try await Self.wait { relay.snapshot().connections.isEmpty })
        #expect(relay.snapshot().status.counters.bytesToPeers == UInt64(message.count))
    }

    @Test func aConnectionThatDidNotComeThroughTheRedirectIsRefusedEvenWithAFixedUpstream() async throws {
        let echo = EchoServer()
        defer { echo.close() }
        let (relay, _, client) = try Self.relaying(to: echo, loops: 1, destination: kernelOriginalDestination)
        defer { relay.stop() }
        defer { close(client) }
        var byte: UInt8 = 0
        let count = recv(client, &byte, 1, 0)
        #expect(count <= 0, "reset or closed at once")
        #expect(try await Self.wait { relay.snapshot().status.counters.accepted == 1 })
        #expect(relay.snapshot().connections.isEmpty)
    }

    @Test func aReloadNarrowingTheAllowlistCutsTheRelayedConnection() async throws {
        let echo = EchoServer()
        defer { echo.close() }
        let (relay, settings, client) = try Self.relaying(to: echo)
        defer { relay.stop() }
        defer { close(client) }
        #expect(try await Self.wait { relay.snapshot().connections.count == 1 })
        var next = settings
        next.frontEnd.allow = AddressSet([try CIDR(parsing: "10.0.0.0/8")])
        next.relay.bufferBytes = 1 << 20
        #expect(relay.canUpdate(to: next))
        let planned = relay.wouldCut(updatingTo: next)
        let cut = relay.update(to: next)
        #expect(planned == cut && cut.map(\.reason) == [.notAllowed])
        #expect(try await Self.wait { relay.snapshot().status.counters.cutByReload == 1 })
        var restarted = next
        restarted.relay.appProtocol = .tcpstore
        #expect(!relay.canUpdate(to: restarted), "the protocol does not change in place")
    }
}
