import RingfenceAddresses
import Testing

@testable import RingfencePolicy

/// `dns:NAME` and `lws:group` entries: where they may go, what they stand for, what is refused
/// (with its position), and how proxyd's resolved addresses join a guard's allowlist.
@Suite struct PeerNamePolicyTests {
    static let lws = PolicyEnvironment(["LWS_LEADER_ADDRESS": "vllm-0.vllm.default", "LWS_GROUP_SIZE": "3"])

    static func policy(_ allow: String, peers: String = "", daemon: String = "") -> String {
        "[daemon]\n\(daemon)\n[peers]\n\(peers)\n[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 29500\nallow = \(allow)\n"
    }

    static func problems(_ text: String, environment: PolicyEnvironment = PolicyEnvironment([:])) -> [String] {
        do {
            _ = try Policy.parse(text, file: "p.toml", environment: environment)
            return []
        } catch {
            return error.diagnostics.map { "\($0.line ?? 0):\($0.column ?? 0) \($0.keyPath): \($0.message)" }
        }
    }

    @Test func dnsEntriesInGroupsAndAllowListsBecomeTheGuardsNames() throws {
        let text = Self.policy(
            "[\"@readers\", \"dns:Leader.Example.\", \"10.0.0.9\"]", peers: "readers = [\"dns:reader.example\", \"10.0.0.0/30\"]")
        let policy = try Policy.parse(text, file: "p.toml")
        let item = policy.guards[0]
        #expect(item.allowNames.map(\.name) == ["leader.example", "reader.example"])
        #expect(item.allow.contains(IPAddress("10.0.0.2")!) && item.allow.contains(IPAddress("10.0.0.9")!))
        #expect(!item.allow.contains(IPAddress("10.0.0.5")!))
        #expect(policy.peerNames.map(\.name) == ["leader.example", "reader.example"])
        #expect(item.allowEntries == ["@readers", "dns:Leader.Example.", "10.0.0.9"])
    }

    @Test func resolvingNamesAddsTheirAddressesAndMissingNamesAddNothing() throws {
        let policy = try Policy.parse(Self.policy("[\"dns:a.example\", \"dns:b.example\"]"), file: "p.toml")
        #expect(policy.guards[0].allow.isEmpty)
        let a = try PeerName(validating: "a.example")
        let resolved = policy.resolvingNames([a: AddressSet([try CIDR(parsing: "10.1.0.1"), try CIDR(parsing: "fd00::1")])])
        #expect(resolved.guards[0].allow.contains(IPAddress("10.1.0.1")!))
        #expect(resolved.guards[0].allow.contains(IPAddress("fd00::1")!))
        #expect(!resolved.guards[0].allow.contains(IPAddress("10.1.0.2")!))
        #expect(policy.resolvingNames([:]) == policy)
    }

    @Test func lwsGroupStandsForTheLeaderAndEveryWorker() throws {
        let policy = try Policy.parse(Self.policy("[\"lws:group\"]"), file: "p.toml", environment: Self.lws)
        #expect(policy.guards[0].allowNames.map(\.name) == ["vllm-0-1.vllm.default", "vllm-0-2.vllm.default", "vllm-0.vllm.default"])
        let group = try LWSGroup(environment: Self.lws)
        #expect(group.names.map(\.name) == ["vllm-0.vllm.default", "vllm-0-1.vllm.default", "vllm-0-2.vllm.default"])
        let alone = try LWSGroup(environment: PolicyEnvironment(["LWS_LEADER_ADDRESS": "solo", "LWS_GROUP_SIZE": "2"]))
        #expect(alone.names.map(\.name) == ["solo", "solo-1"])
    }

    @Test func lwsGroupOutsideALeaderWorkerSetIsRefusedWithItsReason() {
        let found = Self.problems(Self.policy("[\"lws:group\"]"))
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("9:10 guard[0].allow[0]: lws:group needs LWS_LEADER_ADDRESS and LWS_GROUP_SIZE") == true)
        let half = Self.problems(Self.policy("[\"lws:group\"]"), environment: PolicyEnvironment(["LWS_GROUP_SIZE": "2"]))
        #expect(half.first?.contains("lws:group needs LWS_LEADER_ADDRESS, which") == true)
        for size in ["0", "two", "1025"] {
            let bad = Self.problems(
                Self.policy("[\"lws:group\"]"),
                environment: PolicyEnvironment(["LWS_LEADER_ADDRESS": "vllm-0.vllm.default", "LWS_GROUP_SIZE": size]))
            #expect(bad.first?.contains("LWS_GROUP_SIZE is '\(size)'") == true, "\(size): \(bad)")
        }
        let badLeader = Self.problems(
            Self.policy("[\"lws:group\"]"), environment: PolicyEnvironment(["LWS_LEADER_ADDRESS": "-x.y", "LWS_GROUP_SIZE": "2"]))
        #expect(badLeader.first?.contains("LWS_LEADER_ADDRESS: '-x.y' is not a DNS name") == true)
    }

    @Test func badNamesAreRefusedAtTheirPosition() {
        let found = Self.problems(
            Self.policy("[\"dns:\", \"dns:10.0.0.1\", \"dns:a..b\", \"lws:pods\", \"dns:\(String(repeating: "a", count: 64)).x\"]"))
        #expect(found.count == 5)
        #expect(found[0].contains("guard[0].allow[0]: an empty name after dns:"))
        #expect(found[1].contains("guard[0].allow[1]: '10.0.0.1' is an address, not a name; write it without dns:"))
        #expect(found[2].contains("guard[0].allow[2]: 'a..b' is not a DNS name"))
        #expect(found[3].contains("guard[0].allow[3]: unknown entry 'lws:pods': the one lws: entry is lws:group"))
        #expect(found[4].contains("guard[0].allow[4]:"))
        let inGroup = Self.problems(Self.policy("[\"@r\"]", peers: "r = [\"dns:bad_-\"]"))
        #expect(inGroup.first?.contains("peers.r[0]: 'bad_-' is not a DNS name") == true)
    }

    @Test func namesAreValidatedLabelByLabel() throws {
        #expect(try PeerName(validating: "Vllm-0.VLLM.default.").name == "vllm-0.vllm.default")
        #expect(try PeerName(validating: "_svc.example").name == "_svc.example")
        #expect(throws: PeerNameError.self) { try PeerName(validating: "a.-b") }
        #expect(throws: PeerNameError.self) { try PeerName(validating: "a b") }
        #expect(throws: PeerNameError.self) { try PeerName(validating: String(repeating: "a.", count: 127) + "ab") }
        #expect(throws: PeerNameError.self) { try PeerName(validating: "fd00::1") }
    }

    @Test func dnsRefreshDefaultsToTenSecondsWithinOneSecondToAnHour() throws {
        #expect(try Policy.parse(Self.policy("[]"), file: "p.toml").daemon.dnsRefresh == .seconds(10))
        #expect(try Policy.parse(Self.policy("[]", daemon: "dns_refresh = \"2s\""), file: "p.toml").daemon.dnsRefresh == .seconds(2))
        for bad in ["500ms", "61m"] {
            #expect(Self.problems(Self.policy("[]", daemon: "dns_refresh = \"\(bad)\"")).first?.contains("daemon.dns_refresh: from 1s to 1h") == true)
        }
    }
}
