import RingfenceFirewall
import RingfencePolicy
import Testing

/// The strike-ban sets and rules of relay and broker guards (docs/nftables.md, "Strike bans"):
/// declared with timeouts, refusing only new connections, before the allowlist and the
/// redirect, and kept by structural reloads.
@Suite struct StrikeBanRenderingTests {
    static let relay = "[[guard]]\nname = \"store\"\nkind = \"tcp\"\nport = 29500\nallow = [\"10.0.0.1\"]\n"
    static let firewallGuard = "[[guard]]\nname = \"ssh\"\nkind = \"firewall\"\nport = 22\nallow = []\n"

    @Test func relayAndBrokerGuardsGetTimeoutSetsAndNewConnectionRulesBeforeTheirAllowlist() throws {
        let policy = try Policy.parse(Self.relay + Self.firewallGuard, file: "p.toml")
        let script = RulesetRenderer.render(policy)
        #expect(script.contains("\tset store.bans_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\tsize 16384\n\t}\n"))
        #expect(script.contains("\tset store.bans_v6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t\tsize 16384\n\t}\n"))
        #expect(script.contains("\tcounter store.banned {\n\t}\n"))
        let rule = "meta nfproto ipv4 tcp dport 29500 ip saddr @store.bans_v4 ct state new counter name \"store.banned\" reject with tcp reset comment \"store\""
        let banRule = try #require(script.range(of: rule))
        let allowRule = try #require(script.range(of: "meta nfproto ipv4 tcp dport 29500 ip saddr != @store_v4"))
        #expect(banRule.lowerBound < allowRule.lowerBound)
        #expect(script.contains("ip6 saddr @store.bans_v6 ct state new counter name \"store.banned\" reject with tcp reset"))
        // Kernel-only guards have no strikes.
        #expect(!script.contains("ssh.bans") && !script.contains("ssh.banned"))
    }

    @Test func dropPoliciesDropAndDiscoverGuardsMatchTheirRunTimePorts() throws {
        let discover = "[[guard]]\nname = \"xpubs\"\nkind = \"zmq-xpub\"\ndiscover = true\nallow = []\n"
        let policy = try Policy.parse("[firewall]\ndeny = \"drop\"\n" + discover, file: "p.toml")
        let script = RulesetRenderer.render(policy)
        #expect(script.contains(
            "meta nfproto ipv4 tcp dport @xpubs.ports ip saddr @xpubs.bans_v4 ct state new counter name \"xpubs.banned\" drop comment \"xpubs\""))
    }

    @Test func restructureKeepsTheBansOfAGuardThatStaysAndDeletesThoseOfOneThatGoes() throws {
        let before = try Policy.parse(Self.relay + Self.firewallGuard, file: "p.toml")
        let after = try Policy.parse(Self.relay.replacingOccurrences(of: "10.0.0.1", with: "10.0.0.2") + "mode = \"audit\"\n", file: "p.toml")
        let kept = RulesetRenderer.restructure(from: before, to: after)
        #expect(kept.contains("add set inet ringfence store.bans_v4 { type ipv4_addr; flags timeout; size 16384; }\n"))
        #expect(!kept.contains("delete set inet ringfence store.bans") && !kept.contains("flush set inet ringfence store.bans"))
        let gone = RulesetRenderer.restructure(from: before, to: try Policy.parse(Self.firewallGuard, file: "p.toml"))
        #expect(gone.contains("delete set inet ringfence store.bans_v4\n") && gone.contains("delete counter inet ringfence store.banned\n"))
        #expect(!RulesetRenderer.refill(after).contains("store.bans"))
    }
}
