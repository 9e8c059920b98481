import Testing

@testable import RingfencePolicy

/// `ban_after`, `ban_window`, `ban_for` on relay and broker guards, and the broker's
/// `accept_rate_per_peer`: defaults, values, and errors with their positions.
@Suite struct StrikePolicyTests {
    static func guardText(_ kind: String, _ port: Int, _ keys: String) -> String {
        "[[guard]]\nname = \"g\"\nkind = \"\(kind)\"\nport = \(port)\nallow = []\n" + keys
    }

    @Test func defaultsBanAfter20StrikesIn10sFor60sAndTheBrokerAdmits20ConnectionsPerSecond() throws {
        for (kind, port) in [("tcp", 29500), ("zmq-xpub", 5557)] {
            let policy = try Policy.parse(Self.guardText(kind, port, ""), file: "p.toml")
            #expect(policy.guards[0].strikes == StrikeSettings())
            #expect(policy.guards[0].strikes.banAfter == 20)
            #expect(policy.guards[0].strikes.banWindow == .seconds(10) && policy.guards[0].strikes.banFor == .seconds(60))
        }
        let broker = try Policy.parse(Self.guardText("zmq-xpub", 5557, ""), file: "p.toml")
        guard case .broker(let settings) = broker.guards[0].settings else { throw PolicyError(diagnostics: []) }
        #expect(settings.acceptRatePerPeer == 20)
    }

    @Test func valuesAreRead() throws {
        let keys = "ban_after = 0\nban_window = \"30s\"\nban_for = \"2h\"\naccept_rate_per_peer = 5\n"
        let policy = try Policy.parse(Self.guardText("zmq-xpub", 5557, keys), file: "p.toml")
        #expect(policy.guards[0].strikes.banAfter == 0)
        #expect(policy.guards[0].strikes.banWindow == .seconds(30) && policy.guards[0].strikes.banFor == .seconds(7200))
        guard case .broker(let settings) = policy.guards[0].settings else { throw PolicyError(diagnostics: []) }
        #expect(settings.acceptRatePerPeer == 5)
        let relay = try Policy.parse(Self.guardText("tcp", 29500, "ban_after = 7\nban_for = \"90s\"\n"), file: "p.toml")
        #expect(relay.guards[0].strikes.banAfter == 7 && relay.guards[0].strikes.banFor == .seconds(90))
    }

    @Test(arguments: [
        (guardText("tcp", 29500, "ban_after = -1\n"), "p.toml:6:1: guard[0].ban_after: -1 is out of range (0-1000000)"),
        (guardText("tcp", 29500, "ban_window = \"0s\"\n"), "p.toml:6:1: guard[0].ban_window: must be more than zero"),
        (guardText("tcp", 29500, "ban_window = \"2h\"\n"), "p.toml:6:1: guard[0].ban_window: '2h' has an unknown unit 'h'; use us, ms, s or m"),
        (guardText("tcp", 29500, "ban_window = \"61m\"\n"), "p.toml:6:1: guard[0].ban_window: 61m is more than 60m; strikes that far apart are no storm"),
        (guardText("zmq-xpub", 5557, "ban_for = \"31d\"\n"), "p.toml:6:1: guard[0].ban_for: '31d': a ban lasts at most 30d"),
        (guardText("zmq-xpub", 5557, "ban_for = 60\n"), "p.toml:6:1: guard[0].ban_for: expected a duration such as \"60s\", found an integer"),
        (guardText("zmq-xpub", 5557, "accept_rate_per_peer = 0\n"), "p.toml:6:1: guard[0].accept_rate_per_peer: 0 is out of range (1-1000000)"),
        (guardText("firewall", 29500, "ban_after = 3\n"), "p.toml:6:1: guard[0].ban_after: 'ban_after' is not a key of a guard of kind \"firewall\"; it belongs to guards of kind \"tcp\" and \"zmq-xpub\""),
    ])
    func errorsCarryTheirPosition(text: String, expected: String) {
        #expect(PolicyErrorTests.problems(text) == [expected])
    }
}
