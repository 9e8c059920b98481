import RingfenceGuard
import RingfenceStatus
import Testing

@testable import RingfenceDaemon

/// The reload orchestration with fake guards and a fake fence: no root, no sockets.
@Suite struct GuardRosterTests {
    /// A roster running "store" (peers .1 and .2) and "bus" (peer .3), as a first start makes it.
    static func running() throws -> (GuardRoster, FakeFactory) {
        let factory = FakeFactory()
        factory.peers = ["store": ["10.0.0.1", "10.0.0.2"], "bus": ["10.0.0.3"]]
        let roster = GuardRoster(factory: factory)
        _ = try roster.carryOut(
            GuardChanges(started: [
                FakeSettings("store", allow: ["10.0.0.0/24"]), FakeSettings("bus", allow: ["10.0.0.0/24"]),
            ]),
            fence: FakeFence())
        return (roster, factory)
    }

    /// Adds "new", restarts "bus", and narrows "store" to 10.0.0.1.
    static let changes = GuardChanges(
        started: [FakeSettings("new", allow: []), FakeSettings("bus", allow: ["10.0.0.0/24"], listenPort: 2)],
        stopped: [("bus", .guardRestarted)],
        updated: [FakeSettings("store", allow: ["10.0.0.1/32"])])

    static func state(_ roster: GuardRoster) -> [String: [String]] {
        roster.guards.mapValues { $0.snapshot().connections.map(\.peer) }
    }

    @Test func aGuardThatCannotStartRollsTheReloadBack() throws {
        let (roster, factory) = try Self.running()
        let before = Self.state(roster)
        factory.failing = ["bus"]
        let fence = FakeFence()
        #expect(throws: DaemonError.self) { try roster.carryOut(Self.changes, fence: fence) }
        #expect(fence.applied == 0, "the fence is not touched when a guard cannot start")
        #expect(Self.state(roster) == before)
        let new = try #require(factory.made.first { $0.settings.frontEnd.name == "new" })
        #expect(!new.running, "a guard started for the reload is stopped again")
        #expect(factory.made.filter { $0.settings.frontEnd.name != "new" }.allSatisfy { $0.updates == 0 })
        #expect(roster.guards.values.allSatisfy { ($0 as! FakeRosterGuard).running })
    }

    @Test func aRefusedFenceRollsTheReloadBack() throws {
        let (roster, factory) = try Self.running()
        let before = Self.state(roster)
        #expect(throws: DaemonError.self) { try roster.carryOut(Self.changes, fence: FakeFence(refuses: true)) }
        #expect(Self.state(roster) == before)
        let started = factory.made.suffix(2)
        #expect(started.allSatisfy { !$0.running }, "both guards started for the reload are stopped again")
        #expect(roster.guards.values.allSatisfy { ($0 as! FakeRosterGuard).running && ($0 as! FakeRosterGuard).updates == 0 })
        #expect(roster.retired.isEmpty)
    }

    @Test func aDryRunChangesNothingAndListsTheCutsTheReloadMakes() throws {
        let (roster, factory) = try Self.running()
        let before = Self.state(roster)
        let planned = roster.wouldCut(Self.changes)
        #expect(Self.state(roster) == before)
        #expect(factory.made.count == 2, "a dry run starts nothing")
        let fence = FakeFence()
        let done = try roster.carryOut(Self.changes, fence: fence)
        #expect(planned == done)
        #expect(done.map(\.peer) == ["10.0.0.3", "10.0.0.2"])
        #expect(done.map(\.reason) == [.guardRestarted, .notAllowed])
        #expect(fence.applied == 1)
        #expect(Set(roster.guards.keys) == ["store", "bus", "new"])
        #expect(roster.retired["bus"]?.accepted == 1, "the replaced guard's counters are kept")
    }

    @Test func guardsStartAndRetireWhileRunningWithoutAPolicy() throws {
        let (roster, _) = try Self.running()
        try roster.add(FakeSettings("discovered", allow: ["10.0.0.0/8"]))
        #expect(throws: DaemonError.self) { try roster.add(FakeSettings("discovered", allow: [])) }
        #expect(roster.guards["discovered"] != nil)
        #expect(roster.retire(named: "discovered", reason: .guardRemoved) == [])
        #expect(roster.guards["discovered"] == nil)
        #expect(roster.retire(named: "discovered", reason: .guardRemoved) == nil)
    }
}
