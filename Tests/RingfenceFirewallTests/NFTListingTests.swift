import Testing

@testable import RingfenceFirewall

/// Reading nft's JSON listings (as nft 1.0.6 prints them): record sets into `FenceRecord`s,
/// ban sets into `Ban`s, named counters.
@Suite struct NFTListingTests {
    static let meta = #"{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}"#

    @Test func recordsJoinTheSeenAndFirstSets() {
        let seen = #"{"nftables": [\#(Self.meta), {"set": {"name": "host.seen_v4", "elem": ["#
            + #"{"elem": {"val": {"concat": ["10.0.0.3", "tcp", 5000]}, "expires": 86390, "counter": {"packets": 4, "bytes": 240}}},"#
            + #"{"elem": {"val": {"concat": ["10.0.0.3", "udp", 53]}, "expires": 86399, "counter": {"packets": 1, "bytes": 60}}}]}}]}"#
        let first = #"{"nftables": [\#(Self.meta), {"set": {"name": "host.first_v4", "elem": ["#
            + #"{"elem": {"val": {"concat": ["10.0.0.3", "tcp", 5000]}, "expires": 86000}}]}}]}"#
        let records = FenceRecord.records(guardName: "host", mode: .enforce, seen: [seen], first: [first])
        #expect(records == [
            FenceRecord(
                guardName: "host", mode: .enforce, source: "10.0.0.3", transport: "tcp", port: 5000, count: 4,
                firstSeenSecondsAgo: 400, lastSeenSecondsAgo: 10),
            // Its first-seen element missing: as old as the sets can tell.
            FenceRecord(
                guardName: "host", mode: .enforce, source: "10.0.0.3", transport: "udp", port: 53, count: 1,
                firstSeenSecondsAgo: 86_400, lastSeenSecondsAgo: 1),
        ])
    }

    @Test func anEmptySetAndGarbageGiveNothing() {
        let empty = #"{"nftables": [\#(Self.meta), {"set": {"name": "host.seen_v6"}}]}"#
        #expect(FenceRecord.records(guardName: "h", mode: .audit, seen: [empty, "not json"], first: []).isEmpty)
    }

    @Test func bansOfAddressesBlocksAndRanges() {
        let listing = #"{"nftables": [\#(Self.meta), {"set": {"name": "bans.v4", "elem": ["#
            + #"{"elem": {"val": "10.0.0.3", "timeout": 3, "expires": 2}},"#
            + #"{"elem": {"val": {"prefix": {"addr": "10.9.0.0", "len": 16}}, "timeout": 600, "expires": 599}},"#
            + #"{"elem": {"val": {"range": ["10.1.0.1", "10.1.0.6"]}, "timeout": 60, "expires": 30}}]}}]}"#
        let bans = Ban.bans(listing)
        #expect(bans == [
            Ban(peer: "10.0.0.3", secondsLeft: 2), Ban(peer: "10.9.0.0/16", secondsLeft: 599),
            Ban(peer: "10.1.0.1-10.1.0.6", secondsLeft: 30),
        ])
        #expect(bans[0].block?.description == "10.0.0.3" && bans[1].block?.description == "10.9.0.0/16")
    }

    @Test func aBanElementCarriesItsTimeoutInMilliseconds() throws {
        let element = Ban.element(try .init(parsing: "fd00::/64"), for: .seconds(90))
        #expect(element.set == "bans.v6" && element.text == "fd00::/64 timeout 90000ms")
    }

    @Test func namedCounters() {
        let listing = #"{"nftables": [\#(Self.meta), {"counter": {"name": "host.refused", "packets": 12, "bytes": 700}},"#
            + #"{"counter": {"name": "bans.refused", "packets": 0, "bytes": 0}}]}"#
        #expect(NFTListing.counters(listing) == ["host.refused": 12, "bans.refused": 0])
    }
}
