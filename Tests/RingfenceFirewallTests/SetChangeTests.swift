import RingfenceAddresses
@testable import RingfenceFirewall
import Testing

/// Set elements encoded as nft 1.0 encodes interval sets (what `nft --debug=netlink` shows it
/// sending), and the changes between two sets.
@Suite struct SetChangeTests {
    private func set(_ entries: [String]) throws -> AddressSet {
        AddressSet(try entries.map { try CIDR(parsing: $0) })
    }

    private func render(_ elements: [SetElement]) -> [String] { elements.map(\.description) }

    @Test func intervalsBecomeStartAndEndElementsAfterALeadingEndAtZero() throws {
        let elements = SetElement.elements(of: try set(["10.0.0.0/25", "10.0.1.0/25", "255.255.255.0/24"]))
        #expect(
            render(elements.ipv4) == [
                "0.0.0.0 (end)", "10.0.0.0", "10.0.0.128 (end)", "10.0.1.0", "10.0.1.128 (end)", "255.255.255.0 (open)",
            ])
        #expect(elements.ipv6.isEmpty)
    }

    @Test func anIntervalFromZeroHasNoLeadingEndAndIPv6KeysAreSixteenBytes() throws {
        let elements = SetElement.elements(of: try set(["0.0.0.0/8", "2001:db8::/32", "ffff::/16"]))
        #expect(render(elements.ipv4) == ["0.0.0.0", "1.0.0.0 (end)"])
        #expect(render(elements.ipv6) == [":: (end)", "2001:db8::", "2001:db9:: (end)", "ffff:: (open)"])
        #expect(elements.ipv6[1].keyBytes == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12))
        #expect(elements.ipv4[1].keyBytes == [1, 0, 0, 0])
    }

    @Test func aSmallChangeDeletesAndAddsOnlyTheElementsThatDiffer() throws {
        let blocks = (0..<100).map { "10.0.\($0).0/25" }
        let old = SetElement.elements(of: try set(blocks)).ipv4
        let new = SetElement.elements(of: try set(blocks.dropLast() + ["10.1.0.0/24"])).ipv4
        let change = try #require(SetChange.between(old, new, set: "g_v4"))
        #expect(!change.flush)
        #expect(render(change.removed) == ["10.0.99.0", "10.0.99.128 (end)"])
        #expect(render(change.added) == ["10.1.0.0", "10.1.1.0 (end)"])
        #expect(SetChange.between(old, old, set: "g_v4") == nil)
    }

    @Test func aChangeAsLargeAsTheSetFlushesAndRefillsIt() throws {
        let old = SetElement.elements(of: try set(["10.0.0.1", "10.0.0.3"])).ipv4
        let new = SetElement.elements(of: try set(["10.0.0.5"])).ipv4
        let change = try #require(SetChange.between(old, new, set: "g_v4"))
        #expect(change.flush && change.removed.isEmpty && change.added == new)
        let emptied = try #require(SetChange.between(old, [], set: "g_v4"))
        #expect(emptied.flush && emptied.added.isEmpty)
    }

    /// A set shrinking to under half its size is a flush, decided from the sizes alone (the
    /// million-element set of a reload back to a small policy is never compared).
    @Test func aSetShrinkingToUnderHalfItsSizeIsFlushedToItsNewContent() throws {
        let big = SetElement.elements(of: try set((0..<1000).map { "10.0.\($0 / 250).\($0 % 250)/32" })).ipv4
        let small = SetElement.elements(of: try set(["10.0.0.0/32"])).ipv4
        let change = try #require(SetChange.between(big, small, set: "store_v4"))
        #expect(change.flush && change.removed.isEmpty && change.added == small)
        #expect(SetChange.between(big, [], set: "store_v4") == SetChange(set: "store_v4", flush: true, removed: [], added: []))
        #expect(SetChange.between(small, small, set: "store_v4") == nil)
    }

    @Test func theOpenIntervalMarkIsNotPartOfAnElementsIdentity() {
        let marked = SetElement(key: 5, byteCount: 4, isIntervalEnd: false, isOpenInterval: true)
        let plain = SetElement(key: 5, byteCount: 4, isIntervalEnd: false, isOpenInterval: false)
        #expect(marked == plain && Set([marked, plain]).count == 1)
        #expect(marked != SetElement(key: 5, byteCount: 4, isIntervalEnd: true, isOpenInterval: false))
    }

    @Test func changesBetweenAllowlistsCoverOnlyTheNamesWanted() throws {
        let changes = SetChange.changes(
            from: ["a": try set(["10.0.0.1"]), "gone": try set(["10.0.0.9"])],
            to: ["a": try set(["10.0.0.1", "fd00::1"]), "b": try set(["10.0.0.2"])])
        #expect(changes.map(\.set) == ["a_v6", "b_v4"])
    }
}
