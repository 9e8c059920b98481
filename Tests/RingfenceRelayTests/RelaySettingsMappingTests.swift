import RingfenceGuard
import RingfencePolicy
import RingfenceStatus
import Testing

@testable import RingfenceDaemon
@testable import RingfenceRelay

/// The policy's `kind = "tcp"` guard as the typed settings the relay runs from.
@Suite struct RelaySettingsMappingTests {
    @Test func everyRelayKeyReachesTheTypedSettings() throws {
        let policy = try Policy.parse(
            """
            [[guard]]
            name = "store"
            kind = "tcp"
            port = 29500
            listen_port = 39999
            upstream = "127.0.0.1:29600"
            allow = ["10.0.0.0/24"]
            mode = "audit"
            max_connections = 10
            max_connections_per_peer = 3
            accept_rate_per_peer = 7
            buffer_bytes = "64KiB"
            connect_timeout = "2s"
            idle_timeout = "60m"
            protocol = "tcpstore"
            busy_poll = "100us"
            handshake_timeout = "3s"
            partial_timeout = "4s"
            max_key_bytes = 100
            max_value_bytes = "1KiB"
            max_keys = 5
            """, file: "p.toml")
        let mapped = try #require(GuardSettingsMapping.settings(for: policy.guards[0]) as? RelayGuardSettings)
        let front = mapped.frontEnd
        #expect(front.name == "store" && front.kind == .tcp && front.port == 29500 && front.listenPort == 39999)
        #expect(front.upstream == HostPort(host: "127.0.0.1", port: 29600))
        #expect(front.mode == .audit && front.allow == policy.guards[0].allow)
        #expect(front.limits.maxConnections == 10 && front.limits.maxConnectionsPerPeer == 3)
        #expect(front.limits.acceptRatePerPeer == 7)
        let relay = mapped.relay
        #expect(relay.bufferBytes == 64 << 10 && relay.appProtocol == .tcpstore && relay.busyPoll == .microseconds(100))
        #expect(relay.connectTimeout == .seconds(2) && relay.idleTimeout == .seconds(3600))
        #expect(relay.handshakeTimeout == .seconds(3) && relay.partialTimeout == .seconds(4))
        #expect(relay.tcpstore.maxKeyBytes == 100 && relay.tcpstore.maxValueBytes == 1024 && relay.tcpstore.maxKeys == 5)
    }

    @Test func theDefaultsMapToo() throws {
        let policy = try Policy.parse(
            "[[guard]]\nname = \"s\"\nkind = \"tcp\"\nport = 29500\nallow = []\n", file: "p.toml")
        let mapped = try #require(GuardSettingsMapping.settings(for: policy.guards[0]) as? RelayGuardSettings)
        let defaults = RelaySettings(listenPort: 39500)
        #expect(mapped.frontEnd.listenPort == 39500 && mapped.frontEnd.upstream == nil && mapped.frontEnd.mode == .enforce)
        #expect(mapped.relay.bufferBytes == defaults.bufferBytes.bytes && mapped.relay.appProtocol == .none)
        #expect(mapped.frontEnd.limits.maxConnections == defaults.maxConnections)
    }
}
