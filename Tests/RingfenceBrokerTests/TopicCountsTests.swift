import Testing

@testable import RingfenceBroker

/// What goes upstream: a SUBSCRIBE per holder, a CANCEL only when the last holder leaves.
@Suite struct TopicCountsTests {
    @Test func cancelOnlyWhenTheLastHolderLeaves() {
        var counts = TopicCounts()
        counts.add([])
        counts.add([])
        counts.add(Array("a".utf8))
        #expect(counts.subscriptions == [[], [], Array("a".utf8)])
        let removals = [counts.remove([]), counts.remove([]), counts.remove([]), counts.remove(Array("a".utf8))]
        // The second holder of "" leaving sends the CANCEL; a topic nobody holds sends nothing.
        #expect(removals == [false, true, false, true])
        #expect(counts.subscriptions.isEmpty)
    }
}
