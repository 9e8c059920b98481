import RingfencePolicy
import Testing

@testable import RingfenceDaemon

/// A discover guard in the daemon: no broker is made from the policy (brokers come per discovered
/// XPUB), and reloads plan it like a running guard, restarted only when its `process` changes.
@Suite struct DiscoverGuardDaemonTests {
    static func policy(process: String = "vllm", allow: String = "10.0.0.1") throws -> Policy {
        try Policy.parse(
            "[[guard]]\nname = \"xpubs\"\nkind = \"zmq-xpub\"\ndiscover = true\nprocess = \"\(process)\"\nallow = [\"\(allow)\"]\n",
            file: "p.toml")
    }

    @Test func noSettingsAreMadeForADiscoverGuard() throws {
        #expect(GuardSettingsMapping.settings(for: try Self.policy().guards[0]) == nil)
        #expect(GuardChanges(ReloadPlan(from: nil, running: [:], to: try Self.policy())).started.isEmpty)
    }

    @Test func reloadsKeepItUnlessItsProcessChanges() throws {
        let before = try Self.policy()
        let running = ["xpubs": before.guards[0]]
        let allow = ReloadPlan(from: before, running: running, to: try Self.policy(allow: "10.0.0.2"))
        #expect(allow.updated.map(\.name) == ["xpubs"] && allow.restarted.isEmpty && allow.added.isEmpty)
        #expect(GuardChanges(allow).updated.isEmpty)
        let process = ReloadPlan(from: before, running: running, to: try Self.policy(process: "python"))
        #expect(process.restarted.map(\.name) == ["xpubs"])
        #expect(GuardChanges(process).started.isEmpty)
        let gone = ReloadPlan(from: before, running: running, to: try Policy.parse(
            "[[guard]]\nname = \"ssh\"\nkind = \"firewall\"\nport = 22\nallow = []\n", file: "p.toml"))
        #expect(gone.removed == ["xpubs"] && gone.kernelAdded == ["ssh"])
    }
}
