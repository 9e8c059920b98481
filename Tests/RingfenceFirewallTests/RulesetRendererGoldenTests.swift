import Foundation
import RingfenceFirewall
import RingfencePolicy
import Testing

/// The rendered ruleset of each fixture in `Golden/` equals its `.nft` file byte for byte.
/// Set `RINGFENCE_UPDATE_GOLDEN=1` to rewrite the `.nft` files after a deliberate change, then
/// read the diff.
@Suite struct RulesetRendererGoldenTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    @Test(arguments: ["firewall", "tcp", "zmq-xpub", "drop-empty", "host", "host-drop", "discover", "discover-host", "discover-audit"])
    func matchesGoldenFile(name: String) throws {
        let source = Self.golden.appendingPathComponent("\(name).toml")
        let expectedURL = Self.golden.appendingPathComponent("\(name).nft")
        let policy = try Policy.parse(try String(contentsOf: source, encoding: .utf8), file: "\(name).toml")
        let rendered = RulesetRenderer.render(policy)
        if ProcessInfo.processInfo.environment["RINGFENCE_UPDATE_GOLDEN"] == "1" {
            try rendered.write(to: expectedURL, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
        #expect(rendered == expected)
    }

    @Test func renameDeletesThePreviousTableInTheSameScript() throws {
        let policy = try Policy.parse(
            "[firewall]\ntable = \"next\"\n[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = []\n",
            file: "p.toml")
        let script = RulesetRenderer.render(policy, previousTable: "ringfence")
        #expect(script.contains("table inet ringfence\ndelete table inet ringfence\ntable inet next\ndelete table inet next\n"))
    }

    @Test func onlyItsOwnTableIsNamed() throws {
        let policy = try Policy.parse(
            "[firewall]\ntable = \"mine\"\n[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = []\n",
            file: "p.toml")
        let tables = RulesetRenderer.render(policy).split(separator: "\n").filter { $0.hasPrefix("table") || $0.hasPrefix("delete") }
        #expect(tables.allSatisfy { $0.contains("inet mine") })
    }

    /// A structural reload keeps the table, its base chains and the kept guards' sets (their
    /// elements untouched), adds new sets with their elements, rewrites every chain's rules, and
    /// deletes what is gone only after the rules that referred to it.
    @Test func restructureChangesTheTableInPlace() throws {
        let before = try Policy.parse(
            """
            [[guard]]\nname = "kept"\nkind = "firewall"\nport = 1\nallow = ["10.0.0.1"]
            [[guard]]\nname = "relay"\nkind = "tcp"\nport = 2\nlisten_port = 40002\nallow = []
            """, file: "before.toml")
        let after = try Policy.parse(
            """
            [[guard]]\nname = "kept"\nkind = "firewall"\nport = 1\nallow = ["10.0.0.2"]
            [[guard]]\nname = "new"\nkind = "firewall"\nport = 3\nallow = ["10.0.0.3"]
            """, file: "after.toml")
        let script = RulesetRenderer.restructure(from: before, to: after)
        let lines = script.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }
        #expect(!script.contains("delete table") && !lines.contains { $0.contains("10.0.0.1") || $0.contains("10.0.0.2") })
        #expect(lines.contains("add set inet ringfence kept_v4 { type ipv4_addr; flags interval; }"))
        #expect(script.contains("add set inet ringfence new_v4 { type ipv4_addr; flags interval; elements = {\n\t10.0.0.3,\n} }"))
        let flush = try #require(lines.firstIndex(of: "flush chain inet ringfence fence"))
        let deleteSet = try #require(lines.firstIndex(of: "delete set inet ringfence relay_v4"))
        let deleteChains = try #require(lines.firstIndex(of: "delete chain inet ringfence divert"))
        #expect(flush < deleteSet && flush < deleteChains && lines.contains("delete chain inet ringfence shield"))
        #expect(lines.contains { $0.hasPrefix("add rule inet ringfence fence meta nfproto ipv4 tcp dport 3 ip saddr != @new_v4") })
    }

    @Test func allowlistOnlyChangesShareASkeletonAndRefillEverySet() throws {
        func policy(_ allow: String, port: Int = 1) throws -> Policy {
            try Policy.parse(
                "[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = \(port)\nallow = [\(allow)]\n", file: "p.toml")
        }
        let before = try policy(#""10.0.0.1""#)
        let after = try policy(#""10.0.0.0/24", "fd00::1""#)
        #expect(RulesetRenderer.skeleton(before) == RulesetRenderer.skeleton(after))
        #expect(RulesetRenderer.skeleton(before) != RulesetRenderer.skeleton(try policy(#""10.0.0.1""#, port: 2)))
        #expect(!RulesetRenderer.skeleton(after).contains("10.0.0"))
        #expect(
            RulesetRenderer.refill(after) == """
                flush set inet ringfence g_v4
                add element inet ringfence g_v4 {
                \t10.0.0.0/24,
                }
                flush set inet ringfence g_v6
                add element inet ringfence g_v6 {
                \tfd00::1,
                }

                """)
    }
}
