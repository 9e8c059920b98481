import Testing

@testable import RingfencePolicy

/// The host guard and `mode` in a policy: what is accepted, every refusal with its position,
/// and the anti-lockout warning.
@Suite struct HostGuardPolicyTests {
    static let host = "[[guard]]\nname = \"host\"\nkind = \"host\"\n"

    @Test func aHostGuardTakesPublicPortsAndAMode() throws {
        let policy = try Policy.parse(Self.host + "public = [8000, 22]\nallow = [\"10.0.0.0/24\"]\nmode = \"audit\"\n", file: "p.toml")
        let item = try #require(policy.hostGuard)
        #expect(item.kind == .host && item.mode == .audit && item.ports.isEmpty && item.isKernelOnly)
        #expect(item.settings == .host(HostSettings(publicPorts: [8000, 22])))
        #expect(policy.warnings.isEmpty)
    }

    @Test func everyGuardDefaultsToEnforce() throws {
        let policy = try Policy.parse("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = []\n", file: "p.toml")
        #expect(policy.guards[0].mode == .enforce)
        #expect(policy.hostGuard == nil)
    }

    @Test func leavingPort22ClosedIsAWarningWithItsPosition() throws {
        let policy = try Policy.parse(Self.host + "public = [8000]\nallow = []\n", file: "p.toml")
        #expect(policy.warnings.map(\.description) == [
            "p.toml:4:1: guard[0].public: warning: port 22 is not public: SSH from any address outside this guard's allow will be refused (add 22 to 'public' unless that is meant)"
        ])
        let without = try Policy.parse(Self.host + "allow = []\n", file: "p.toml")
        #expect(without.warnings.map(\.keyPath) == ["guard[0].kind"])
    }

    @Test(arguments: [
        (host + "port = 22\nallow = []\n",
         "p.toml:4:1: guard[0].port: a host guard fences every port of the host and takes no 'port'; list the ports open to everyone in 'public'"),
        (host + "ports = [1]\npublic = [22]\nallow = []\n",
         "p.toml:4:1: guard[0].ports: a host guard fences every port of the host and takes no 'ports'; list the ports open to everyone in 'public'"),
        (host + "public = [22, 0]\nallow = []\n", "p.toml:4:15: guard[0].public[1]: port 0 is out of range (1-65535)"),
        (host + "public = [22, 70000]\nallow = []\n", "p.toml:4:15: guard[0].public[1]: port 70000 is out of range (1-65535)"),
        (host + "public = [22, 22]\nallow = []\n", "p.toml:4:15: guard[0].public[1]: port 22 is listed twice"),
        (host + "public = \"22\"\nallow = []\n", "p.toml:4:1: guard[0].public: expected an array of port numbers"),
        (host + "public = [22]\nallow = []\nmode = \"dry\"\n", "p.toml:6:1: guard[0].mode: 'dry' is not one of \"enforce\", \"audit\""),
        (host + "public = [22]\nallow = []\nlisten_port = 5\n",
         "p.toml:6:1: guard[0].listen_port: 'listen_port' is not a key of a guard of kind \"host\"; it belongs to guards of kind \"tcp\" and \"zmq-xpub\""),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\npublic = [22]\nallow = []\n",
         "p.toml:5:1: guard[0].public: 'public' is not a key of a guard of kind \"firewall\"; it belongs to guards of kind \"host\""),
    ])
    func refusesWithPosition(text: String, expected: String) {
        #expect(PolicyErrorTests.problems(text) == [expected])
    }

    @Test func twoHostGuardsAreRefusedAtTheSecond() {
        let text = Self.host + "public = [22]\nallow = []\n" + "[[guard]]\nname = \"other\"\nkind = \"host\"\npublic = [22]\nallow = []\n"
        #expect(PolicyErrorTests.problems(text) == [
            "p.toml:8:1: guard[1].kind: a policy has at most one host guard; guard[0] 'host' is one already"
        ])
    }

    @Test func aPublicPortGuardedElsewhereIsRefused() {
        let store = "[[guard]]\nname = \"store\"\nkind = \"tcp\"\nport = 29500\nallow = []\n"
        #expect(PolicyErrorTests.problems(store + Self.host + "public = [22, 29500]\nallow = []\n") == [
            "p.toml:9:15: guard[1].public[1]: port 29500 is guarded by guard 'store'; a public port is open to everyone and cannot be guarded too"
        ])
        // Positions count the array as written, bad elements included.
        #expect(PolicyErrorTests.problems(store + Self.host + "public = [0, 29500]\nallow = []\n") == [
            "p.toml:9:11: guard[1].public[0]: port 0 is out of range (1-65535)",
            "p.toml:9:14: guard[1].public[1]: port 29500 is guarded by guard 'store'; a public port is open to everyone and cannot be guarded too",
        ])
        #expect(PolicyErrorTests.problems(store + Self.host + "public = [39500, 22]\nallow = []\n") == [
            "p.toml:9:11: guard[1].public[0]: port 39500 is the listen port of guard 'store'; a public port is open to everyone and cannot be guarded too"
        ])
    }

    @Test(arguments: [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86_400), ("30d", 2_592_000)])
    func banDurations(text: String, seconds: Int64) throws {
        #expect(try BanDuration.parse(text).get() == .seconds(seconds))
    }

    @Test(arguments: [
        ("5", "'5' has no unit; write it with s, m, h or d, e.g. \"5s\""),
        ("0s", "'0s': a ban lasts at least 1s"),
        ("31d", "'31d': a ban lasts at most 30d"),
        ("soon", "'soon' is not a ban duration; write a whole number with s, m, h or d, e.g. \"10m\""),
        ("3w", "'3w' has an unknown unit 'w'; use s, m, h or d"),
    ])
    func badBanDurations(text: String, message: String) {
        guard case .failure(let error) = BanDuration.parse(text) else { Issue.record("\(text) parsed"); return }
        #expect(error.description == message)
    }
}
