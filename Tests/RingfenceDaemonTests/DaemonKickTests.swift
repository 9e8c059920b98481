import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceControl
import RingfenceGuard
import RingfenceRelay
import RingfenceStatus
import RingfenceTCPStore
import Testing

@testable import RingfenceDaemon
@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// `proxyctl kick PEER --guard NAME` through a real daemon (a policy of one kernel-only guard
/// and `apply = false`: no root, no nftables) reaches a guard started at run time by name.
///
/// In a process of its own (an exit test): a daemon takes over SIGHUP, SIGTERM and SIGINT.
/// The child's exit code says what failed: 2 the daemon did not start, 3 the guard did not
/// start, 4 the kick by the guard's name was refused, 5 an unknown name was not refused.
@Suite struct DaemonKickTests {
    @Test func aGuardStartedAtRunTimeIsKickedByName() async {
        await #expect(processExitsWith: .exitCode(0)) {
            DaemonKickTests.kickByName()
        }
    }

    /// Exits at once with the outcome, the daemon still running (it is never let go in `proxyd`).
    static func kickByName() -> Never {
        let directory = "/tmp/ringfence-kick-\(getpid())"
        mkdir(directory, 0o700)
        let policyPath = "\(directory)/policy.toml"
        let policy = """
            [firewall]
            apply = false

            [[guard]]
            name = "fenced"
            kind = "firewall"
            port = 29400
            allow = ["10.0.0.0/8"]

            """
        guard let file = fopen(policyPath, "w") else { _exit(2) }
        fputs(policy, file)
        fclose(file)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        guard let daemon = try? Daemon(policyPath: policyPath, controlSocket: "\(directory)/control.sock", logger: logger),
            (try? daemon.start()) != nil
        else { _exit(2) }
        let settings = RelayGuardSettings(
            frontEnd: FrontEndSettings(
                name: "discovered", kind: .tcp, port: 29500, listenPort: 0,
                allow: AddressSet([try! CIDR(parsing: "127.0.0.0/8")]),
                limits: Admission.Limits(maxConnections: 8, maxConnectionsPerPeer: 8, acceptRatePerPeer: 100),
                upstream: HostPort(host: "127.0.0.1", port: 9)),
            relay: RelayLimits(
                bufferBytes: 64 << 10, connectTimeout: .seconds(5), idleTimeout: .zero, appProtocol: .none,
                busyPoll: .zero, handshakeTimeout: .seconds(5), partialTimeout: .seconds(10),
                tcpstore: TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 4 << 20, maxKeys: 16384)))
        let credentials = Posix.PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
        let outcome: Int32 = daemon.queue.sync {
            guard (try? daemon.startGuard(settings)) != nil else { return 3 }
            let named = daemon.kick(ControlRequest(command: .kick, peer: "127.0.0.9", guardName: "discovered"), credentials: credentials)
            guard named.ok, named.kick?.guardName == "discovered" else { return 4 }
            let unknown = daemon.kick(ControlRequest(command: .kick, peer: "127.0.0.9", guardName: "nope"), credentials: credentials)
            guard !unknown.ok, unknown.error?.code == .notFound else { return 5 }
            return 0
        }
        for name in ["policy.toml", "control.sock"] { unlink("\(directory)/\(name)") }
        rmdir(directory)
        _exit(outcome)
    }
}
