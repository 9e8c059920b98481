import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The shared front end with fake sessions, over real loopback sockets: refusals, the redirect
/// check, the sweep, update in place, and one cut rule for a reload and its dry run.
@Suite struct GuardFrontEndTests {
    static func allow(_ blocks: String...) -> AddressSet {
        AddressSet(blocks.map { try! CIDR(parsing: $0) })
    }

    static func settings(
        kind: GuardKind = .tcp, allow: AddressSet = allow("127.0.0.0/8"), mode: GuardMode = .enforce,
        total: Int = 100, perPeer: Int = 100, rate: Int = 1000, upstream: HostPort? = nil
    ) -> FrontEndSettings {
        FrontEndSettings(
            name: "g", kind: kind, port: 4000, listenPort: LoopbackClient.freePort(), allow: allow, mode: mode,
            limits: Admission.Limits(maxConnections: total, maxConnectionsPerPeer: perPeer, acceptRatePerPeer: rate),
            upstream: upstream)
    }

    /// A redirect that says every connection was headed for 10.9.9.9:4000.
    static let redirected: OriginalDestination = { _, _ in SocketAddress(address: .v4(0x0A09_0909), port: 4000) }

    static func started(_ settings: FrontEndSettings, _ destination: @escaping OriginalDestination = redirected) throws -> FakeGuard {
        let made = try FakeGuard(settings, originalDestination: destination)
        try made.start()
        return made
    }

    @Test(arguments: [
        (Self.settings(allow: AddressSet()), DenialReason.notAllowed),
        (Self.settings(perPeer: 1), .peerLimit),
        (Self.settings(total: 1, perPeer: 5), .totalLimit),
        (Self.settings(rate: 1), .rateLimit),
    ])
    func eachRefusalResetsTheConnectionAndIsCounted(settings: FrontEndSettings, reason: DenialReason) async throws {
        let running = try Self.started(settings)
        defer { running.stop() }
        // The first connection passes every check but the allowlist; the second meets the cap or rate.
        let first = LoopbackClient.connect(to: settings.listenPort)
        let second = reason == .notAllowed ? first : LoopbackClient.connect(to: settings.listenPort)
        defer { close(first); if second != first { close(second) } }
        #expect(LoopbackClient.isClosed(second))
        #expect(try await eventually { running.snapshot().status.counters[denied: reason] == 1 })
        #expect(running.snapshot().status.counters.deniedTotal == 1)
        #expect(running.sessions.sessions.count == (reason == .notAllowed ? 0 : 1))
    }

    @Test(arguments: [GuardKind.tcp, .zmqXPUB], [nil, HostPort(host: "127.0.0.1", port: 9)])
    func everyConnectionWithoutARedirectIsRefusedForBothKinds(kind: GuardKind, upstream: HostPort?) async throws {
        let settings = Self.settings(kind: kind, upstream: upstream)
        // The first connection came through the redirect; the rest did not (none, or the listen port itself).
        let calls = Mutex(0)
        let listenPort = settings.listenPort
        let running = try Self.started(settings) { fd, family in
            switch calls.withLock({ $0 += 1; return $0 }) {
            case 1: return SocketAddress(address: .v4(0x0A09_0909), port: 4000)
            case 2: return nil
            default: return SocketAddress(address: .v4(0x7F00_0001), port: listenPort)
            }
        }
        defer { running.stop() }
        let clients = (0..<3).map { _ in LoopbackClient.connect(to: listenPort) }
        defer { clients.forEach { close($0) } }
        #expect(LoopbackClient.isClosed(clients[1]))
        #expect(LoopbackClient.isClosed(clients[2]))
        let held = running.sessions.sessions
        #expect(held.count == 1)
        // A fixed upstream says where an admitted connection goes, not whether it was redirected.
        let expected = upstream.map { SocketAddress(address: .v4(0x7F00_0001), port: $0.port) }
            ?? SocketAddress(address: .v4(0x0A09_0909), port: 4000)
        #expect(held.first?.destination == expected)
        // The refused connections gave their admission places back.
        #expect(try await eventually { running.frontEnd.admission.connectionCount == 1 })
    }

    @Test func theSweepRunsOnTheSessionsLoops() async throws {
        let running = try Self.started(Self.settings())
        defer { running.stop() }
        #expect(try await eventually { running.sessions.sweeps >= 2 })
        running.stop()
        let after = running.sessions.sweeps
        try await Task.sleep(for: .milliseconds(500))
        #expect(running.sessions.sweeps <= after + 1, "stop cancels the sweep")
    }

    @Test func updateInPlaceSwapsAdmissionAndCutsOnlyPeersNoLongerAdmitted() async throws {
        let settings = Self.settings(allow: Self.allow("127.0.0.1/32", "127.0.0.2/32"))
        let running = try Self.started(settings)
        defer { running.stop() }
        let kept = LoopbackClient.connect(from: "127.0.0.1", to: settings.listenPort)
        let cut = LoopbackClient.connect(from: "127.0.0.2", to: settings.listenPort)
        defer { close(kept); close(cut) }
        #expect(try await eventually { running.sessions.sessions.count == 2 })
        var next = settings
        next.allow = Self.allow("127.0.0.1/32")
        next.limits.maxConnectionsPerPeer = 1
        let closed = running.update(to: FakeGuard.Settings(frontEnd: next))
        #expect(closed.map(\.peer) == ["127.0.0.2"] && closed.map(\.reason) == [.notAllowed])
        #expect(LoopbackClient.isClosed(cut))
        #expect(running.sessions.sessions.map(\.fd).count == 1)
        // The new cap and allowlist hold for the next accepts: 127.0.0.1 has its one connection.
        let again = LoopbackClient.connect(from: "127.0.0.1", to: settings.listenPort)
        let refused = LoopbackClient.connect(from: "127.0.0.2", to: settings.listenPort)
        defer { close(again); close(refused) }
        #expect(LoopbackClient.isClosed(again) && LoopbackClient.isClosed(refused))
        let counters = running.snapshot().status.counters
        #expect(counters[denied: .peerLimit] == 1 && counters[denied: .notAllowed] == 1)
        // Audit mode admits everyone: nothing is cut.
        next.mode = .audit
        next.allow = AddressSet()
        #expect(running.update(to: FakeGuard.Settings(frontEnd: next)).isEmpty)
    }

    @Test func aDryRunListsExactlyWhatTheReloadCuts() async throws {
        let settings = Self.settings(allow: Self.allow("127.0.0.0/29"))
        let running = try Self.started(settings)
        defer { running.stop() }
        let clients = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.2"].map {
            LoopbackClient.connect(from: $0, to: settings.listenPort)
        }
        defer { clients.forEach { close($0) } }
        #expect(try await eventually { running.sessions.sessions.count == 4 })
        var next = settings
        next.allow = Self.allow("127.0.0.1/32", "127.0.0.3/32")
        let planned = running.wouldCut(updatingTo: FakeGuard.Settings(frontEnd: next))
        #expect(running.sessions.sessions.count == 4, "a dry run cuts nothing")
        let done = running.update(to: FakeGuard.Settings(frontEnd: next))
        #expect(planned == done)
        #expect(done.map(\.peer) == ["127.0.0.2", "127.0.0.2"])
    }

    @Test func kickClosesOnlyTheBlocksPeers() async throws {
        let settings = Self.settings()
        let running = try Self.started(settings)
        defer { running.stop() }
        let a = LoopbackClient.connect(from: "127.0.0.4", to: settings.listenPort)
        let b = LoopbackClient.connect(from: "127.0.0.5", to: settings.listenPort)
        defer { close(a); close(b) }
        #expect(try await eventually { running.sessions.sessions.count == 2 })
        let kicked = running.kick(Self.allow("127.0.0.5/32"))
        #expect(kicked.map(\.peer) == ["127.0.0.5"] && kicked.map(\.reason) == [.kicked])
        #expect(LoopbackClient.isClosed(b))
    }
}
