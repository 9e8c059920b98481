import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import Synchronization
import SystemPackage
import Testing

@testable import RingfenceBroker

/// The broker behind the shared front end: every subscriber must come through the redirect,
/// not only the first (before, the broker checked only the one that set its upstream).
@Suite struct BrokerGuardTests {
    static func settings(listenPort: UInt16) -> BrokerGuardSettings {
        BrokerGuardSettings(
            frontEnd: FrontEndSettings(
                name: "bus", kind: .zmqXPUB, port: 5557, listenPort: listenPort,
                allow: AddressSet([try! CIDR(parsing: "127.0.0.0/8")]),
                limits: Admission.Limits(maxConnections: 8, maxConnectionsPerPeer: 8, acceptRatePerPeer: 1_000_000)),
            broker: BrokerLimits(
                hwmMessages: 10, hwmBytes: 1 << 20, maxTopicBytes: 245, maxSubscriptions: 8, maxMessageBytes: 1 << 20,
                handshakeTimeout: .seconds(30), onOverflow: .disconnect, busyPoll: .zero))
    }

    /// The first bytes the guard sends a new client (a ZMTP greeting), or nil when it closed it.
    static func firstBytes(from port: UInt16) throws -> Int? {
        let socket = try Socket.tcp(family: SocketAddress(address: .v4(0x7F00_0001), port: port).family)
        let count = Result { () throws(Errno) in try firstBytes(on: socket.fd, from: port) }
        socket.close()
        return try count.get()
    }

    private static func firstBytes(on fd: Int32, from port: UInt16) throws(Errno) -> Int? {
        _ = try Posix.connect(fd, SocketAddress(address: .v4(0x7F00_0001), port: port))
        var buffer = [UInt8](repeating: 0, count: 64)
        for _ in 0..<20 {
            Posix.waitReadable([fd], timeout: .milliseconds(100))
            let result = buffer.withUnsafeMutableBytes { pointer in Result { () throws(Errno) in try Posix.read(fd, into: pointer) } }
            switch result {
            case .success(.done(let count)): return count > 0 ? count : nil
            case .success(.wouldBlock): continue
            case .failure: return nil
            }
        }
        return nil
    }

    @Test func everySubscriberIsCheckedForTheRedirect() throws {
        // Subscribers 1 and 3 came through the redirect; 2 did not.
        let calls = Mutex(0)
        let destination: OriginalDestination = { _, _ in
            calls.withLock { $0 += 1; return $0 } == 2 ? nil : SocketAddress(address: .v4(0x7F00_0001), port: 1)
        }
        var started: BrokerGuard?
        for _ in 0..<5 where started == nil {
            let attempt = try BrokerGuard(
                Self.settings(listenPort: .random(in: 40000...49999)), logger: Logger(label: "test"),
                originalDestination: destination)
            if (try? attempt.start()) != nil { started = attempt }
        }
        let broker = try #require(started)
        defer { broker.stop() }
        let port = broker.brokerSettings.frontEnd.listenPort
        #expect(try Self.firstBytes(from: port) != nil, "the first subscriber gets a greeting")
        #expect(try Self.firstBytes(from: port) == nil, "the second, not redirected, is closed")
        #expect(try Self.firstBytes(from: port) != nil, "the third gets a greeting")
        let snapshot = broker.snapshot()
        #expect(snapshot.status.kind == .zmqXPUB && snapshot.status.counters.accepted == 3)
    }
}
