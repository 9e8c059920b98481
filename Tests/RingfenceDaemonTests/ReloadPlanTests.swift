import RingfencePolicy
import Testing

@testable import RingfenceDaemon

@Suite struct ReloadPlanTests {
    static func policy(_ text: String) throws -> Policy {
        try Policy.parse(text, file: "p.toml")
    }

    static func relay(_ name: String, port: Int, allow: String, extra: String = "") -> String {
        """
        [[guard]]
        name = "\(name)"
        kind = "tcp"
        port = \(port)
        allow = [\(allow)]
        \(extra)

        """
    }

    static let host = "[[guard]]\nname = \"host\"\nkind = \"host\"\npublic = [22]\nallow = [\"10.0.0.0/24\"]\n"

    @Test func kernelOnlyGuardsAreReportedButNeverStartedOrStopped() throws {
        let before = try Self.policy(
            Self.relay("store", port: 1, allow: #""10.0.0.1""#)
                + "[[guard]]\nname = \"nccl\"\nkind = \"firewall\"\nport = 2\nallow = []\n")
        let after = try Self.policy(Self.relay("store", port: 1, allow: #""10.0.0.1""#) + Self.host)
        let running = Dictionary(uniqueKeysWithValues: before.guards.filter { !$0.isKernelOnly }.map { ($0.name, $0) })
        let plan = ReloadPlan(from: before, running: running, to: after)
        #expect(plan.added.isEmpty && plan.removed.isEmpty && plan.restarted.isEmpty && plan.updated.isEmpty)
        #expect(plan.kernelAdded == ["host"] && plan.kernelRemoved == ["nccl"] && plan.kernelUpdated.isEmpty)
        // A switch to audit changes the guard in the kernel only.
        let audit = try Self.policy(Self.relay("store", port: 1, allow: #""10.0.0.1""#) + Self.host + "mode = \"audit\"\n")
        let switched = ReloadPlan(from: after, running: running, to: audit)
        #expect(switched.kernelUpdated == ["host"] && switched.updated.isEmpty)
        #expect(switched.rules.added.contains("ct state != new return"))
    }

    @Test func sortsGuardsIntoAddedRestartedUpdatedAndRemoved() throws {
        let before = try Self.policy(
            Self.relay("kept", port: 1, allow: #""10.0.0.1""#)
                + Self.relay("allowlist", port: 2, allow: #""10.0.0.1""#)
                + Self.relay("limits", port: 3, allow: #""10.0.0.1""#)
                + Self.relay("moved", port: 4, allow: #""10.0.0.1""#)
                + Self.relay("gone", port: 5, allow: #""10.0.0.1""#))
        let after = try Self.policy(
            Self.relay("kept", port: 1, allow: #""10.0.0.1""#)
                + Self.relay("allowlist", port: 2, allow: #""10.0.0.1", "10.0.0.2""#)
                + Self.relay("limits", port: 3, allow: #""10.0.0.1""#, extra: "max_connections_per_peer = 2")
                + Self.relay("moved", port: 4, allow: #""10.0.0.1""#, extra: "listen_port = 40000")
                + Self.relay("new", port: 6, allow: #""10.0.0.1""#))
        let running = Dictionary(uniqueKeysWithValues: before.guards.map { ($0.name, $0) })
        let plan = ReloadPlan(from: before, running: running, to: after)
        #expect(plan.added.map(\.name) == ["new"])
        #expect(plan.removed == ["gone"])
        #expect(plan.restarted.map(\.name) == ["moved"])
        #expect(plan.updated.map(\.name) == ["allowlist", "limits"])
        #expect(plan.rules.added.contains("element allowlist_v4 { 10.0.0.1-10.0.0.2 }"))
        #expect(!(plan.rules.removed + plan.rules.added).contains { $0.contains("kept") })
        #expect(plan.rules.removed.contains("element allowlist_v4 { 10.0.0.1 }"))
        #expect(plan.rules.removed.contains { $0.contains("gone") })
    }

    @Test func protocolAndUpstreamChangesRestartTheGuard() throws {
        let before = try Self.policy(Self.relay("store", port: 29500, allow: "", extra: #"protocol = "tcpstore""#))
        let after = try Self.policy(Self.relay("store", port: 29500, allow: "", extra: #"protocol = "none""#))
        let upstream = try Self.policy(
            Self.relay("store", port: 29500, allow: "", extra: "protocol = \"tcpstore\"\nupstream = \"127.0.0.1:1\""))
        let running = ["store": before.guards[0]]
        #expect(ReloadPlan(from: before, running: running, to: after).restarted.map(\.name) == ["store"])
        #expect(ReloadPlan(from: before, running: running, to: upstream).restarted.map(\.name) == ["store"])
        #expect(ReloadPlan(from: before, running: running, to: before).updated.isEmpty)
    }

    @Test func firstStartAddsEveryTrafficGuardAndNoFirewallGuard() throws {
        let policy = try Self.policy(
            Self.relay("store", port: 29500, allow: "")
                + "[[guard]]\nname = \"fw\"\nkind = \"firewall\"\nports = [1]\nallow = []\n")
        let plan = ReloadPlan(from: nil, running: [:], to: policy)
        #expect(plan.added.map(\.name) == ["store"])
        #expect(plan.rules.removed.isEmpty && !plan.rules.added.isEmpty)
    }

    @Test func ruleDiffCountsRepeatedLines() {
        let changes = ReloadPlan.diff("a\n  b\nb\n# c\n", "b\nd\n")
        #expect(changes.removed == ["a", "b"])
        #expect(changes.added == ["d"])
    }
}
