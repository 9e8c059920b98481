import RingfenceFirewall
import RingfencePolicy
import Testing

/// A discover guard's run-time sets in structural reloads: kept (never emptied or refilled) while
/// the guard stays a discover guard, deleted when it goes or stops discovering.
@Suite struct DiscoveryRenderingTests {
    static func policy(_ guards: String) throws -> Policy {
        try Policy.parse(guards + "\n[[guard]]\nname = \"ssh\"\nkind = \"firewall\"\nport = 22\nallow = []\n", file: "p.toml")
    }

    static let discover = "[[guard]]\nname = \"xpubs\"\nkind = \"zmq-xpub\"\ndiscover = true\nallow = [\"10.0.0.1\"]\n"
    static let runTimeSets = ["xpubs.ports", "xpubs.hold", "xpubs.divert", "xpubs.listen"]

    @Test func restructureKeepsTheSetsOfADiscoverGuardThatStays() throws {
        let before = try Self.policy(Self.discover)
        let after = try Self.policy(Self.discover.replacingOccurrences(of: "10.0.0.1", with: "10.0.0.2") + "mode = \"audit\"\n")
        let script = RulesetRenderer.restructure(from: before, to: after)
        #expect(script.contains("add set inet ringfence xpubs.ports { type inet_service; }\n"))
        #expect(script.contains("add map inet ringfence xpubs.divert { type inet_service : inet_service; }\n"))
        #expect(!Self.runTimeSets.contains { script.contains("delete set inet ringfence \($0)") || script.contains("flush set inet ringfence \($0)") })
        #expect(!script.contains("delete map"))
        #expect(!RulesetRenderer.refill(after).contains("xpubs."))
    }

    @Test func restructureDeletesTheSetsOfAGuardThatGoesOrStopsDiscovering() throws {
        let before = try Self.policy(Self.discover)
        let named = "[[guard]]\nname = \"xpubs\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\n"
        for after in [try Self.policy(""), try Self.policy(named)] {
            let script = RulesetRenderer.restructure(from: before, to: after)
            for name in ["xpubs.ports", "xpubs.hold", "xpubs.listen"] {
                #expect(script.contains("delete set inet ringfence \(name)\n"))
            }
            #expect(script.contains("delete map inet ringfence xpubs.divert\n"))
            // Deleted only after the chains stopped referring to them.
            let rewrite = try #require(script.range(of: "flush chain inet ringfence divert"))
            let delete = try #require(script.range(of: "delete set inet ringfence xpubs.ports"))
            #expect(rewrite.lowerBound < delete.lowerBound)
        }
    }

    @Test func noDiscoverGuardNoRunTimeSets() throws {
        let script = RulesetRenderer.render(try Self.policy(""))
        #expect(!script.contains("inet_service;") && !script.contains("map "))
    }
}
