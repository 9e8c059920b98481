import RingfenceAddresses
import RingfencePolicy
import Testing

@testable import RingfenceNames

/// The rules of peer names: first resolution, changes, TTL and refresh, failures that keep the
/// last addresses (stale) or admit nobody (unresolved), and names leaving the policy.
@Suite struct PeerNameTableTests {
    static let a = try! PeerName(validating: "a.example")
    static let b = try! PeerName(validating: "b.example")
    static let start = ContinuousClock.now

    static func addresses(_ texts: String...) -> NameLookup {
        .addresses(Set(texts.map { IPAddress($0)! }), ttl: nil)
    }

    @Test func aNewNameIsDueAtOnceAndAdmitsNobodyUntilItResolves() {
        var table = PeerNameTable(refresh: .seconds(10))
        table.follow([Self.a], refresh: .seconds(10), now: Self.start)
        #expect(table.records[Self.a]?.state == .resolving)
        #expect(table.addresses.isEmpty)
        #expect(table.takeDue(now: Self.start) == [Self.a])
        #expect(table.takeDue(now: Self.start).isEmpty, "a lookup under way is not taken twice")
        #expect(table.nextDue == nil)
        let outcome = table.record(Self.a, Self.addresses("10.0.0.2", "10.0.0.1"), now: Self.start)
        #expect(outcome == .changed(added: [IPAddress("10.0.0.1")!, IPAddress("10.0.0.2")!], removed: []))
        #expect(table.records[Self.a]?.state == .resolved)
        #expect(table.addresses[Self.a]?.contains(IPAddress("10.0.0.1")!) == true)
        #expect(table.nextDue == Self.start + .seconds(10))
    }

    @Test func aShorterTTLBringsTheNextLookupForwardButNeverUnderASecond() {
        var table = PeerNameTable(refresh: .seconds(10))
        table.follow([Self.a, Self.b], refresh: .seconds(10), now: Self.start)
        _ = table.takeDue(now: Self.start)
        _ = table.record(Self.a, .addresses([IPAddress("10.0.0.1")!], ttl: .seconds(3)), now: Self.start)
        _ = table.record(Self.b, .addresses([IPAddress("10.0.0.2")!], ttl: .zero), now: Self.start)
        #expect(table.records[Self.a]?.due == Self.start + .seconds(3))
        #expect(table.records[Self.b]?.due == Self.start + .seconds(1))
    }

    @Test func aChangeReportsWhatLeftAndWhatCameAndTheSameAnswerConfirms() {
        var table = PeerNameTable()
        table.follow([Self.a], refresh: .seconds(10), now: Self.start)
        _ = table.takeDue(now: Self.start)
        _ = table.record(Self.a, Self.addresses("10.0.0.1", "10.0.0.2"), now: Self.start)
        _ = table.takeDue(now: Self.start + .seconds(10))
        #expect(table.record(Self.a, Self.addresses("10.0.0.2", "10.0.0.1"), now: Self.start + .seconds(10)) == .confirmed(recovered: false))
        _ = table.takeDue(now: Self.start + .seconds(20))
        let moved = table.record(Self.a, Self.addresses("10.0.0.2", "10.0.0.3"), now: Self.start + .seconds(20))
        #expect(moved == .changed(added: [IPAddress("10.0.0.3")!], removed: [IPAddress("10.0.0.1")!]))
        #expect(table.records[Self.a]?.changes == 2)
    }

    @Test func aFailureKeepsTheLastAddressesAndSaysStaleOnce() {
        var table = PeerNameTable(refresh: .seconds(10), retry: .seconds(2))
        table.follow([Self.a], refresh: .seconds(10), now: Self.start)
        _ = table.takeDue(now: Self.start)
        _ = table.record(Self.a, Self.addresses("10.0.0.1"), now: Self.start)
        _ = table.takeDue(now: Self.start + .seconds(10))
        #expect(table.record(Self.a, .failed("Temporary failure"), now: Self.start + .seconds(10)) == .stale(first: true))
        #expect(table.records[Self.a]?.state == .stale && table.records[Self.a]?.lastError == "Temporary failure")
        #expect(table.addresses[Self.a]?.contains(IPAddress("10.0.0.1")!) == true, "a hiccup must not empty the fence")
        #expect(table.records[Self.a]?.due == Self.start + .seconds(12), "retried sooner than the refresh")
        _ = table.takeDue(now: Self.start + .seconds(12))
        #expect(table.record(Self.a, .failed("Temporary failure"), now: Self.start + .seconds(12)) == .stale(first: false))
        _ = table.takeDue(now: Self.start + .seconds(14))
        #expect(table.record(Self.a, Self.addresses("10.0.0.1"), now: Self.start + .seconds(14)) == .confirmed(recovered: true))
        #expect(table.records[Self.a]?.state == .resolved && table.records[Self.a]?.failures == 2)
    }

    @Test func aNameThatNeverResolvedStaysUnresolvedAndAdmitsNobody() {
        var table = PeerNameTable()
        table.follow([Self.a], refresh: .seconds(10), now: Self.start)
        _ = table.takeDue(now: Self.start)
        #expect(table.record(Self.a, .failed("Name or service not known"), now: Self.start) == .unresolved(first: true))
        _ = table.takeDue(now: Self.start + .seconds(2))
        #expect(table.record(Self.a, .failed("Name or service not known"), now: Self.start + .seconds(2)) == .unresolved(first: false))
        #expect(table.addresses.isEmpty && table.records[Self.a]?.state == .unresolved)
    }

    @Test func followingAReloadDropsNamesThatLeftKeepsTheRestAndLooksThemUpAgain() {
        var table = PeerNameTable()
        table.follow([Self.a, Self.b], refresh: .seconds(10), now: Self.start)
        _ = table.takeDue(now: Self.start)
        _ = table.record(Self.a, Self.addresses("10.0.0.1"), now: Self.start)
        let later = Self.start + .seconds(3)
        table.follow([Self.a], refresh: .seconds(5), now: later)
        #expect(table.records[Self.b] == nil && table.refresh == .seconds(5))
        #expect(table.addresses[Self.a] != nil, "kept names keep their addresses through a reload")
        #expect(table.takeDue(now: later) == [Self.a])
        #expect(table.record(Self.b, Self.addresses("10.0.0.9"), now: later) == .ignored)
    }

    @Test func lookupsUnderWayStayWithinTheLimit() {
        var table = PeerNameTable()
        let names = (0..<40).map { try! PeerName(validating: "n\($0).example") }
        table.follow(names, refresh: .seconds(10), now: Self.start)
        #expect(table.takeDue(now: Self.start, limit: 16).count == 16)
        #expect(table.takeDue(now: Self.start, limit: 16).isEmpty)
        _ = table.record(names[0], .failed("x"), now: Self.start)
        #expect(table.takeDue(now: Self.start, limit: 16).count == 1)
    }
}
