import Testing

@testable import RingfenceFirewall

/// What each `DiscoveryChange` does to a discover guard's four run-time sets, and that the
/// elements sent are only the difference (so no change fails on an element present or absent).
@Suite struct DiscoveryChangeTests {
    @Test func holdThenDivertThenRelease() {
        let held = DiscoveryElements().applying([.hold(5000)])
        #expect(held == DiscoveryElements(ports: [5000], hold: [5000]))
        let diverted = held.applying([.divert(5000, to: 40000)])
        #expect(diverted == DiscoveryElements(ports: [5000], divert: [5000: 40000], listen: [40000]))
        #expect(diverted.applying([.release(5000, listen: nil)]) == DiscoveryElements())
        #expect(diverted.applying([.release(5000, listen: 40000)]) == DiscoveryElements())
    }

    @Test func divertWithoutHoldAddsThePort() {
        #expect(
            DiscoveryElements().applying([.divert(7000, to: 47000)])
                == DiscoveryElements(ports: [7000], divert: [7000: 47000], listen: [47000]))
    }

    @Test func divertToANewListenPortDropsTheOldOne() {
        let start = DiscoveryElements(ports: [1, 2], divert: [1: 100, 2: 200], listen: [100, 200])
        #expect(start.applying([.divert(1, to: 101)]).listen == [101, 200])
        // A listen port another entry still maps to stays.
        let shared = DiscoveryElements(ports: [1, 2], divert: [1: 100, 2: 100], listen: [100])
        #expect(shared.applying([.divert(1, to: 101)]).listen == [100, 101])
    }

    @Test func repeatedAndAbsentChangesAreNoEdits() {
        let start = DiscoveryElements(ports: [5000], hold: [5000])
        #expect(start.edits(to: start.applying([.hold(5000)])).isEmpty)
        #expect(start.edits(to: start.applying([.release(6000, listen: 46000)])).isEmpty)
        #expect(DiscoveryElements().edits(to: DiscoveryElements().applying([.release(1, listen: nil)])).isEmpty)
    }

    @Test func editsAreTheDifferenceAndReplaceAChangedMapEntry() {
        let start = DiscoveryElements(ports: [1, 2], hold: [2], divert: [1: 100], listen: [100])
        let edits = start.edits(to: start.applying([.divert(1, to: 101), .divert(2, to: 200)]))
        typealias E = DiscoveryElements.Edit.Element
        #expect(
            edits == [
                .init(target: .hold, removed: [E(key: 2)], added: []),
                .init(target: .divert, removed: [E(key: 1, data: 100)], added: [E(key: 1, data: 101), E(key: 2, data: 200)]),
                .init(target: .listen, removed: [E(key: 100)], added: [E(key: 101), E(key: 200)]),
            ])
    }

    /// What a replaced table is given back: every element as it was, and the same as changes.
    @Test func carriesItsElementsIntoANewTable() {
        let elements = DiscoveryElements().applying([.hold(6000), .divert(5557, to: 40123), .divert(5558, to: 40124)])
        #expect(
            elements.restoreScript(guardName: "xpubs", table: "rf") == """
                add element inet rf xpubs.ports { 5557, 5558, 6000 }
                add element inet rf xpubs.hold { 6000 }
                add element inet rf xpubs.divert { 5557 : 40123, 5558 : 40124 }
                add element inet rf xpubs.listen { 40123, 40124 }

                """)
        #expect(DiscoveryElements().applying(elements.changes) == elements)
        #expect(DiscoveryElements().restoreScript(guardName: "xpubs", table: "rf") == "")
    }

    @Test func describesItselfForLogs() {
        #expect(
            [DiscoveryChange.hold(1), .divert(1, to: 2), .release(1, listen: 2), .release(1, listen: nil)].map(\.description)
                == ["hold 1", "divert 1 to 2", "release 1 (listen 2)", "release 1"])
    }

    @Test func portsTravelInNetworkOrder() {
        #expect(NFTNetlink.portBytes(5000) == [0x13, 0x88])
        #expect(NFTNetlink.port([0x13, 0x88]) == 5000)
        #expect(NFTNetlink.port([0x13]) == nil)
    }
}
