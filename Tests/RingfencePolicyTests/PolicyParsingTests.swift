import Foundation
import RingfenceAddresses
import Testing

@testable import RingfencePolicy

@Suite struct PolicyParsingTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    @Test func theDocumentedExampleIsValid() throws {
        let path = Self.repository.appendingPathComponent("policy.example.toml").path
        let policy = try Policy.load(path: path)
        #expect(policy.guards.map(\.name) == ["torch-rendezvous", "tcpstore", "tp-broadcast", "xpubs", "host"])
        #expect(policy.guards.map(\.kind) == [.firewall, .tcp, .zmqXPUB, .zmqXPUB, .host])
        #expect(policy.guards[0].ports == [29500, 29501])
        #expect(policy.guards[4].settings == .host(HostSettings(publicPorts: [22, 8000])))
        #expect(policy.guards.map(\.mode) == [.enforce, .enforce, .enforce, .enforce, .enforce])
        // The discover guard: the broker's defaults, for every XPUB of a process named vllm.
        var discovering = BrokerSettings(listenPort: 0)
        discovering.discover = true
        discovering.process = "vllm"
        #expect(policy.guards[3].settings == .broker(discovering))
        #expect(policy.guards[3].ports.isEmpty && policy.guards[3].discovers)
        #expect(policy.warnings.isEmpty)
        // Every value the example writes is the documented default, except where it says otherwise.
        guard case .relay(let relay) = policy.guards[1].settings, case .broker(let broker) = policy.guards[2].settings
        else {
            Issue.record("wrong settings")
            return
        }
        var expectedRelay = RelaySettings(listenPort: 39600)
        expectedRelay.appProtocol = .tcpstore
        expectedRelay.busyPoll = RelaySettings.defaultTCPStoreBusyPoll
        #expect(relay == expectedRelay)
        #expect(broker == BrokerSettings(listenPort: 15557))
        #expect(policy.firewall == FirewallSettings())
        #expect(policy.daemon == DaemonSettings())
    }

    @Test func defaults() throws {
        let policy = try Policy.parse(
            """
            [[guard]]
            name = "store"
            kind = "tcp"
            port = 29500
            allow = ["10.0.0.1"]

            [[guard]]
            name = "bus"
            kind = "zmq-xpub"
            port = 5557
            allow = []
            """, file: "p.toml")
        #expect(policy.firewall.table == "ringfence")
        #expect(policy.firewall.apply)
        #expect(policy.firewall.deny == .reject)
        #expect(!policy.firewall.removeOnExit)
        #expect(policy.daemon.controlSocket == "/run/ringfence/control.sock")
        guard case .relay(let relay) = policy.guards[0].settings, case .broker(let broker) = policy.guards[1].settings
        else {
            Issue.record("wrong settings")
            return
        }
        #expect(relay.listenPort == 39500)
        #expect(relay.upstream == nil)
        #expect(relay.maxConnections == 8192 && relay.maxConnectionsPerPeer == 64 && relay.acceptRatePerPeer == 50)
        #expect(relay.bufferBytes == .mebibytes(1) && relay.connectTimeout == .seconds(5) && relay.idleTimeout == .zero)
        #expect(relay.appProtocol == .none && relay.handshakeTimeout == .seconds(5) && relay.partialTimeout == .seconds(10))
        #expect(relay.maxKeyBytes == .kibibytes(4) && relay.maxValueBytes == .mebibytes(4) && relay.maxKeys == 16384)
        #expect(relay.busyPoll == .zero, "bytes only: no busy polling unless asked")
        #expect(broker.listenPort == 15557 && broker.upstream == nil)
        #expect(broker.maxSubscribers == 32 && broker.maxSubscribersPerPeer == 8 && broker.maxSubscriptionsPerPeer == 64)
        #expect(broker.maxTopicBytes == 245 && broker.maxMessageBytes == .mebibytes(64))
        #expect(broker.hwmMessages == 1000 && broker.hwmBytes == .mebibytes(64))
        #expect(broker.onOverflow == .block && broker.maxStall == .seconds(2) && broker.handshakeTimeout == .seconds(5))
        #expect(broker.busyPoll == .milliseconds(2))
        // An empty allowlist admits nobody.
        #expect(policy.guards[1].allow.isEmpty)
    }

    @Test func busyPollDefaultsOnForTheTCPStoreGateOnly() throws {
        func busyPoll(_ keys: String) throws -> Duration {
            let policy = try Policy.parse(
                "[[guard]]\nname = \"s\"\nkind = \"tcp\"\nport = 29500\nallow = []\n" + keys, file: "p.toml")
            guard case .relay(let relay) = policy.guards[0].settings else { throw PolicyError(diagnostics: []) }
            return relay.busyPoll
        }
        #expect(try busyPoll("protocol = \"tcpstore\"\n") == .microseconds(200))
        #expect(try busyPoll("protocol = \"tcpstore\"\nbusy_poll = \"0s\"\n") == .zero)
        #expect(try busyPoll("busy_poll = \"50us\"\n") == .microseconds(50))
        #expect(try busyPoll("busy_poll = \"10ms\"\n") == .milliseconds(10))
    }

    @Test func limitsAreRead() throws {
        let policy = try Policy.parse(
            """
            [firewall]
            table = "rf_test"
            apply = false
            deny = "drop"
            remove_on_exit = true
            [daemon]
            control_socket = "/tmp/rf.sock"
            [[guard]]
            name = "bus"
            kind = "zmq-xpub"
            port = 5557
            listen_port = 6000
            upstream = "[fd00::1]:5557"
            allow = []
            hwm_messages = 10
            hwm_bytes = 1048576
            max_message_bytes = "512 KiB"
            on_overflow = "drop"
            handshake_timeout = "250ms"
            """, file: "p.toml")
        #expect(policy.firewall.table == "rf_test" && !policy.firewall.apply)
        #expect(policy.firewall.deny == .drop && policy.firewall.removeOnExit)
        #expect(policy.daemon.controlSocket == "/tmp/rf.sock")
        guard case .broker(let broker) = policy.guards[0].settings else {
            Issue.record("wrong settings")
            return
        }
        #expect(broker.listenPort == 6000)
        #expect(broker.upstream == Endpoint(host: "fd00::1", port: 5557))
        #expect(broker.hwmMessages == 10 && broker.hwmBytes == .mebibytes(1) && broker.maxMessageBytes == .kibibytes(512))
        #expect(broker.onOverflow == .drop && broker.handshakeTimeout == .milliseconds(250))
    }

    @Test func daemonWatchIsReadAndOffByDefault() throws {
        let guardText = "[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 29500\nallow = []\n"
        #expect(try !Policy.parse(guardText, file: "p.toml").daemon.watch)
        #expect(try Policy.parse("[daemon]\nwatch = true\n" + guardText, file: "p.toml").daemon.watch)
        #expect(try !Policy.parse("[daemon]\nwatch = false\n" + guardText, file: "p.toml").daemon.watch)
    }

    @Test func groupsResolveThroughReferences() throws {
        let policy = try Policy.parse(
            """
            [peers]
            head = ["10.0.0.1"]
            workers = ["10.0.0.2", "10.0.0.3", "fd00::/64"]
            cluster = ["@head", "@workers", "::ffff:10.0.0.4"]
            [[guard]]
            name = "store"
            kind = "firewall"
            port = 29500
            allow = ["@cluster", "192.168.1.0/24"]
            """, file: "p.toml")
        let allow = policy.guards[0].allow
        #expect(allow.ipv4Elements == ["10.0.0.1-10.0.0.4", "192.168.1.0/24"])
        #expect(allow.ipv6Elements == ["fd00::/64"])
        #expect(policy.guards[0].allowEntries == ["@cluster", "192.168.1.0/24"])
        #expect(policy.peerGroups["cluster"]?.ipv4Elements == ["10.0.0.1-10.0.0.4"])
        #expect(policy.peerGroups["cluster"]?.ipv6Elements == ["fd00::/64"])
    }
}
