import RingfenceAdmission
import RingfenceGuard
import RingfencePolicy
import Testing

@testable import RingfenceDaemon

/// The policy's strike keys and the broker's `accept_rate_per_peer` reach the guards'
/// admission, and a discovered broker's bans go to its discover guard's kernel sets.
@Suite struct StrikeBanMappingTests {
    @Test func strikeKeysAndTheBrokersAcceptRateReachAdmission() throws {
        let policy = try Policy.parse(
            """
            [[guard]]
            name = "store"
            kind = "tcp"
            port = 29500
            allow = []
            ban_after = 5
            ban_window = "3s"
            ban_for = "2m"

            [[guard]]
            name = "bus"
            kind = "zmq-xpub"
            port = 5557
            allow = []
            accept_rate_per_peer = 9
            """, file: "p.toml")
        let relay = try #require(GuardSettingsMapping.settings(for: policy.guards[0]))
        #expect(relay.frontEnd.limits.strikes == StrikeLedger.Rules(banAfter: 5, window: .seconds(3), banFor: .seconds(120)))
        let broker = try #require(GuardSettingsMapping.settings(for: policy.guards[1]))
        #expect(broker.frontEnd.limits.acceptRatePerPeer == 9)
        #expect(broker.frontEnd.limits.strikes == StrikeLedger.Rules(banAfter: 20, window: .seconds(10), banFor: .seconds(60)))
    }

    @Test func aDiscoveredBrokersBansBelongToItsDiscoverGuard() {
        #expect(Daemon.policyGuard(of: "bus") == "bus")
        #expect(Daemon.policyGuard(of: "xpubs/10.0.0.5:5557") == "xpubs")
        #expect(Daemon.policyGuard(of: "xpubs/[fd00::5]:5557") == "xpubs")
    }
}
