import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import RingfenceTestSupport
import Testing

@testable import RingfenceRelay

#if canImport(Glibc)
import Glibc
#endif

#if DEBUG  // Socket.debugCounts
/// Every way a relay guard refuses an accepted connection closes its socket, and the sockets it
/// made for it, exactly once: admission (allowlist, per-peer and total caps, rate), the redirect
/// check, and a session whose upstream cannot be reached.
///
/// Counted with `Socket.debugCounts` in a process of its own (an exit test): the counts are
/// process-wide, and a socket dropped without a close stops that process with an assertion
/// instead of the whole test run.
@Suite struct RefusalCloseTests {
    /// One refusal path: the guard's settings, the connections admitted first (from these
    /// sources), the one refused (from `source`), and the sockets the refusal makes.
    struct Path {
        var name: String
        var allow = "127.0.0.0/8"
        var limits = Admission.Limits(maxConnections: 8, maxConnectionsPerPeer: 8, acceptRatePerPeer: 100)
        var admittedFirst: [String] = []
        var source = "127.0.0.1"
        var redirected = true
        var upstreamListens = true
        /// The accepted socket, and the upstream socket when a session is started.
        var sockets = 1
    }

    static let paths: [Path] = [
        Path(name: "allowlist", allow: "10.0.0.0/8"),
        Path(
            name: "per-peer cap", limits: .init(maxConnections: 8, maxConnectionsPerPeer: 1, acceptRatePerPeer: 100),
            admittedFirst: ["127.0.0.1"]),
        Path(
            name: "total cap", limits: .init(maxConnections: 1, maxConnectionsPerPeer: 8, acceptRatePerPeer: 100),
            admittedFirst: ["127.0.0.1"], source: "127.0.0.2"),
        Path(
            name: "rate", limits: .init(maxConnections: 8, maxConnectionsPerPeer: 8, acceptRatePerPeer: 1),
            admittedFirst: ["127.0.0.1"]),
        Path(name: "redirect check", redirected: false),
        Path(name: "upstream unreachable", upstreamListens: false, sockets: 2),
    ]

    @Test func eachRefusalClosesTheConnectionsSocketsExactlyOnce() async {
        // The child reports what failed on its standard output (the guard logs to its error
        // output) and exits 0; only a crash (a socket dropped without a close) fails the exit.
        let result = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            var failures: [String] = []
            for path in RefusalCloseTests.paths {
                if let failure = await RefusalCloseTests.check(path) { failures.append("\(path.name): \(failure)") }
                // The guard stopped: every socket this process made, its listeners' and the
                // admitted connections' too, is closed before the next path counts.
                if !(await RefusalCloseTests.settled { Socket.debugCounts.adopted == Socket.debugCounts.closed }) {
                    failures.append("\(path.name): sockets left open after the guard stopped: \(Socket.debugCounts)")
                }
            }
            let report = failures.map { "\(RefusalCloseTests.failureMark)\($0)\n" }.joined()
            _ = report.withCString { write(1, $0, strlen($0)) }
            // At once, without exit handlers: the guards' loops may still be winding down.
            _exit(0)
        }
        let output = result.map { String(decoding: $0.standardOutputContent, as: UTF8.self) } ?? ""
        for line in output.split(separator: "\n") where line.hasPrefix(Self.failureMark) {
            Issue.record("\(line.dropFirst(Self.failureMark.count))")
        }
    }

    static let failureMark = "refusal path failed: "

    /// Runs `path` against a relay guard; nil when the refused connection was reset and exactly
    /// its sockets were closed, once each; otherwise what went wrong.
    static func check(_ path: Path) async -> String? {
        let echo = EchoServer()
        defer { echo.close() }
        var settings = RelayGuardTests.settings(
            upstream: path.upstreamListens ? echo.port : LoopbackClient.freePort(), allow: path.allow)
        settings.frontEnd.limits = path.limits
        let redirected = path.redirected
        let relay: RelayGuard
        do {
            relay = try RelayGuard(
                settings, group: EventLoopGroup(count: 1), logger: Logger(label: "test"),
                originalDestination: { _, _ in redirected ? SocketAddress(address: .v4(0x0A09_0909), port: 29500) : nil })
            try relay.start()
        } catch {
            return "the relay did not start: \(error)"
        }
        defer { relay.stop() }
        let port = settings.frontEnd.listenPort
        let admitted = path.admittedFirst.map { LoopbackClient.connect(from: $0, to: port) }
        defer { admitted.forEach { close($0) } }
        guard await settled({ relay.snapshot().connections.filter { $0.state == "relaying" }.count == admitted.count }) else {
            return "the connections admitted first are not relaying"
        }
        let before = Socket.debugCounts
        let refused = LoopbackClient.connect(from: path.source, to: port)
        defer { close(refused) }
        guard LoopbackClient.isClosed(refused) else { return "the refused connection was not closed" }
        let expected = (adopted: before.adopted + path.sockets, closed: before.closed + path.sockets)
        _ = await settled { Socket.debugCounts.closed >= expected.closed }
        // Long enough for a second close, were there one, to have happened.
        try? await Task.sleep(for: .milliseconds(100))
        let after = Socket.debugCounts
        guard after == expected else {
            return "sockets adopted \(after.adopted - before.adopted), closed \(after.closed - before.closed); expected \(path.sockets) each"
        }
        guard relay.snapshot().connections.count == admitted.count else { return "the refused connection holds a session" }
        return nil
    }

    /// Polls `condition` every 10 ms for up to 3 s.
    static func settled(_ condition: () -> Bool) async -> Bool {
        (try? await eventually(condition)) ?? false
    }
}
#endif
