import RingfenceAddresses
import RingfencePolicy
import Testing

@testable import RingfenceFirewall

/// `proxyctl explain`'s answers, in the order the fence's rules decide: loopback, bans, the
/// named guards' TCP ports, then the host guard's public ports and allowlist.
@Suite struct FenceVerdictTests {
    static let policy = try! Policy.parse(
        """
        [peers]
        workers = ["10.0.0.0/24", "fd00::/64"]
        [[guard]]
        name = "store"
        kind = "tcp"
        port = 29500
        allow = ["10.0.0.7"]
        [[guard]]
        name = "nccl"
        kind = "firewall"
        port = 5600
        allow = ["10.1.0.0/16"]
        mode = "audit"
        [[guard]]
        name = "host"
        kind = "host"
        public = [22, 8000]
        allow = ["@workers", "192.0.2.1"]
        """, file: "p.toml")

    static func decide(_ address: String, _ port: UInt16, _ transport: FenceVerdict.Transport = .tcp, bans: [Ban] = [])
        -> FenceVerdict
    {
        FenceVerdict.decide(IPAddress(address)!, port: port, transport: transport, policy: policy, bans: bans)
    }

    @Test func theHostGuardAllowsThroughTheEntryThatHoldsTheAddress() {
        let verdict = Self.decide("10.0.0.9", 40000)
        #expect(verdict.outcome == .allowed && verdict.guardName == "host")
        #expect(verdict.reason == "allowed by guard host through @workers = 10.0.0.0/24")
        #expect(Self.decide("fd00::5", 40000, .udp).reason == "allowed by guard host through @workers = fd00::/64")
        #expect(Self.decide("192.0.2.1", 1).reason == "allowed by guard host through 192.0.2.1")
    }

    @Test func theHostGuardRefusesTCPAndUDPFromOutside() {
        #expect(Self.decide("10.9.9.9", 40000).reason == "refused: in no allowlist of guard host (tcp port 40000)")
        #expect(Self.decide("fd01::1", 53, .udp).outcome == .refused)
    }

    @Test func publicPortsAnswerEveryoneBothProtocols() {
        #expect(Self.decide("203.0.113.5", 8000).reason == "allowed: public port of guard host")
        #expect(Self.decide("2001:db8::1", 22, .udp).outcome == .allowed)
    }

    @Test func namedGuardsDecideTheirTCPPortsOnly() {
        // Allowed by the host guard, but the store's own allowlist is narrower.
        #expect(Self.decide("10.0.0.9", 29500).reason == "refused: in no allowlist of guard store (tcp port 29500)")
        #expect(Self.decide("10.0.0.7", 29500).reason == "allowed by guard store through 10.0.0.7")
        // UDP to the same number is the host guard's.
        #expect(Self.decide("10.0.0.9", 29500, .udp).guardName == "host")
    }

    @Test func anAuditGuardLetsThroughAndSaysSo() {
        let verdict = Self.decide("10.0.0.9", 5600)
        #expect(verdict.outcome == .audit && verdict.guardName == "nccl" && verdict.mode == .audit)
    }

    @Test func bansComeBeforeEveryAllowlistAndLoopbackBeforeBans() {
        let bans = [Ban(peer: "10.0.0.0/28", secondsLeft: 7)]
        #expect(Self.decide("10.0.0.9", 8000, bans: bans).reason == "refused: banned, 10.0.0.0/28 is refused on every port (7s left)")
        #expect(Self.decide("10.0.0.99", 8000, bans: bans).outcome == .allowed)
        #expect(Self.decide("127.0.0.1", 1, bans: [Ban(peer: "127.0.0.0/8", secondsLeft: 1)]).outcome == .allowed)
    }

    @Test func withoutAHostGuardOtherPortsAreOpen() throws {
        let policy = try Policy.parse("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = []\n", file: "p.toml")
        let verdict = FenceVerdict.decide(IPAddress("10.0.0.1")!, port: 2, transport: .tcp, policy: policy)
        #expect(verdict.outcome == .open && verdict.guardName == nil)
        let udp = FenceVerdict.decide(IPAddress("10.0.0.1")!, port: 1, transport: .udp, policy: policy)
        #expect(udp.reason == "open: no guard fences udp port 1 (guard g fences TCP only)")
    }

    /// A port a discover guard covers now is decided by that guard's allowlist, before the host
    /// guard's; the same port with nothing discovered on it is the host guard's again.
    @Test func aDiscoveredPortIsDecidedByItsDiscoverGuard() throws {
        let policy = try Policy.parse(
            """
            [[guard]]
            name = "xpubs"
            kind = "zmq-xpub"
            discover = true
            allow = ["10.0.0.7"]
            [[guard]]
            name = "host"
            kind = "host"
            allow = ["10.0.0.0/24"]
            """, file: "p.toml")
        let worker = IPAddress("10.0.0.9")!
        let covered = FenceVerdict.decide(worker, port: 41067, transport: .tcp, policy: policy, discovered: [41067: "xpubs"])
        #expect(covered.outcome == .refused && covered.guardName == "xpubs")
        #expect(covered.reason.contains("discovered XPUB port 41067"))
        let allowed = FenceVerdict.decide(
            IPAddress("10.0.0.7")!, port: 41067, transport: .tcp, policy: policy, discovered: [41067: "xpubs"])
        #expect(allowed.outcome == .allowed && allowed.guardName == "xpubs")
        let udp = FenceVerdict.decide(worker, port: 41067, transport: .udp, policy: policy, discovered: [41067: "xpubs"])
        #expect(udp.guardName == "host")
        #expect(FenceVerdict.decide(worker, port: 41067, transport: .tcp, policy: policy).guardName == "host")
    }
}
