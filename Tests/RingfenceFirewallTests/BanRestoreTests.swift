import Testing

@testable import RingfenceFirewall

/// What a table replace (proxyd's start, e.g. after a crash) appends to its own transaction to
/// keep the bans it read from the kernel (docs/reliability.md, "Crash and restart").
@Suite struct BanRestoreTests {
    @Test func bansOnEveryPortAndStrikeBansGoBackIntoTheirSetsWithTheTimeTheyHadLeft() {
        let script = Ban.restoreScript(
            [
                Ban(peer: "10.77.0.6", secondsLeft: 590),
                Ban(peer: "fd00::/64", secondsLeft: 30),
                Ban(peer: "10.77.0.5", secondsLeft: 599, guardName: "store"),
                Ban(peer: "fd77::5", secondsLeft: 2, guardName: "bus"),
            ], table: "ringfence")
        let lines = script.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("add element inet ringfence bans.v4 { 10.77.0.6"))
        #expect(lines[0].hasSuffix(" timeout 590000ms }"))
        #expect(lines[1] == "add element inet ringfence bans.v6 { fd00::/64 timeout 30000ms }")
        #expect(lines[2] == "add element inet ringfence store.bans_v4 { 10.77.0.5 timeout 599000ms }")
        #expect(lines[3] == "add element inet ringfence bus.bans_v6 { fd77::5 timeout 2000ms }")
    }

    @Test func lapsedBansAndElementsThatNameNoBlockAreLeftOut() {
        let script = Ban.restoreScript(
            [
                Ban(peer: "10.0.0.3", secondsLeft: 0),
                Ban(peer: "10.1.0.1-10.1.0.6", secondsLeft: 30),
                Ban(peer: "not an address", secondsLeft: 30, guardName: "store"),
            ], table: "ringfence")
        #expect(script.isEmpty)
    }
}
