import Testing

@testable import RingfenceAddresses

@Suite struct AddressSetTests {
    private func set(_ entries: [String]) throws -> AddressSet {
        AddressSet(try entries.map { try CIDR(parsing: $0) })
    }

    @Test func mergesOverlappingAndAdjacentIPv4() throws {
        let merged = try set(["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5", "10.0.2.0/24", "10.0.1.0/24", "10.0.3.0/24", "192.168.0.1"])
        #expect(merged.ipv4Elements == ["10.0.0.0/22", "192.168.0.1"])
    }

    @Test func keepsDisjointRangesApartAndRendersRanges() throws {
        let merged = try set(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"])
        #expect(merged.ipv4Elements == ["10.0.0.1-10.0.0.3", "10.0.0.5"])
    }

    @Test func mergesIPv6AndNormalisesMapped() throws {
        let merged = try set(["fd00::/65", "fd00:0:0:0:8000::/65", "::ffff:10.0.0.1", "10.0.0.0/31"])
        #expect(merged.ipv6Elements == ["fd00::/64"])
        #expect(merged.ipv4Elements == ["10.0.0.0/31"])
    }

    @Test func handlesTheWholeSpace() throws {
        let all = try set(["0.0.0.0/1", "128.0.0.0/1", "::/0", "::1"])
        #expect(all.ipv4Elements == ["0.0.0.0/0"])
        #expect(all.ipv6Elements == ["::/0"])
        #expect(all.contains(.v4(.max)))
        #expect(all.contains(.v6(.max)))
    }

    @Test func membershipIPv4IPv6AndMapped() throws {
        let allowed = try set(["10.0.0.0/24", "192.168.1.7", "fd00::/64"])
        #expect(allowed.contains(IPAddress("10.0.0.0")!))
        #expect(allowed.contains(IPAddress("10.0.0.255")!))
        #expect(!allowed.contains(IPAddress("10.0.1.0")!))
        #expect(!allowed.contains(IPAddress("9.255.255.255")!))
        #expect(allowed.contains(IPAddress("192.168.1.7")!))
        #expect(!allowed.contains(IPAddress("192.168.1.8")!))
        #expect(allowed.contains(IPAddress("fd00::abcd")!))
        #expect(!allowed.contains(IPAddress("fd01::1")!))
        // A peer seen on a dual-stack socket as ::ffff:a.b.c.d matches the IPv4 entries.
        #expect(allowed.contains(IPAddress("::ffff:10.0.0.9")!))
        #expect(!allowed.contains(IPAddress("::ffff:10.0.1.9")!))
        // IPv4 entries never admit IPv6 peers and vice versa.
        #expect(!allowed.contains(IPAddress("::a00:1")!))
    }

    @Test func emptySetAdmitsNobody() {
        let empty = AddressSet()
        #expect(empty.isEmpty)
        #expect(!empty.contains(IPAddress("10.0.0.1")!))
        #expect(!empty.contains(IPAddress("::1")!))
    }

    @Test func unionMerges() throws {
        let union = try set(["10.0.0.0/25"]).union(try set(["10.0.0.128/25", "fd00::1"]))
        #expect(union.ipv4Elements == ["10.0.0.0/24"])
        #expect(union.ipv6Elements == ["fd00::1"])
    }

    /// An address is in the intersection exactly when it is in both sets, for random sets of
    /// small blocks in a small space (so that they overlap often) and every address of it.
    @Test func intersectionHoldsWhatBothHold() throws {
        var generator = SystemRandomNumberGenerator()
        func randomSet() -> AddressSet {
            AddressSet((0..<40).map { _ in
                CIDR(unchecked: .v4(UInt32.random(in: 0...4095, using: &generator)), prefixLength: Int.random(in: 24...32, using: &generator))
            })
        }
        for _ in 0..<20 {
            let a = randomSet()
            let b = randomSet()
            let both = a.intersection(b)
            for value in UInt32(0)...4200 {
                #expect(both.contains(.v4(value)) == (a.contains(.v4(value)) && b.contains(.v4(value))))
            }
            for (x, y) in zip(both.ipv4, both.ipv4.dropFirst()) { #expect(x.upperBound + 1 < y.lowerBound) }
        }
        let mixed = try set(["10.0.0.0/24", "fd00::/64"]).intersection(try set(["10.0.0.128/25", "fd00::5"]))
        #expect(mixed.ipv4Elements == ["10.0.0.128/25"] && mixed.ipv6Elements == ["fd00::5"])
    }

    @Test func intervalsNotInTheOtherSetAreKeptWhole() throws {
        let old = try set(["10.0.0.0/24", "10.0.2.0/24"])
        let new = try set(["10.0.0.0/25", "10.0.2.0/24"])
        #expect(old.intervals(notIn: new).ipv4Elements == ["10.0.0.0/24"])
        #expect(new.intervals(notIn: old).ipv4Elements == ["10.0.0.0/25"])
    }

    /// Membership agrees with a linear scan over the same blocks, for random blocks and probes.
    @Test func membershipMatchesLinearScan() throws {
        var generator = SystemRandomNumberGenerator()
        var blocks: [CIDR] = []
        for _ in 0..<2000 {
            let prefix = Int.random(in: 8...32, using: &generator)
            let address = UInt32.random(in: 0...UInt32.max, using: &generator)
            blocks.append(CIDR(unchecked: .v4(address), prefixLength: prefix))
        }
        let merged = AddressSet(blocks)
        for _ in 0..<20000 {
            let probe = IPAddress.v4(UInt32.random(in: 0...UInt32.max, using: &generator))
            let expected = blocks.contains { $0.first <= probe && probe <= $0.last }
            #expect(merged.contains(probe) == expected)
        }
        // Intervals are sorted, disjoint and not adjacent.
        for (a, b) in zip(merged.ipv4, merged.ipv4.dropFirst()) {
            #expect(a.upperBound + 1 < b.lowerBound)
        }
    }

    @Test func hundredThousandEntries() {
        var blocks: [CIDR] = []
        for index in 0..<100_000 {
            blocks.append(CIDR(unchecked: .v4(UInt32(0x0a00_0000) + UInt32(index) * 4), prefixLength: 31))
        }
        let merged = AddressSet(blocks)
        #expect(merged.ipv4.count == 100_000)
        #expect(merged.contains(.v4(0x0a00_0000 + 4 * 99_999 + 1)))
        #expect(!merged.contains(.v4(0x0a00_0000 + 4 * 99_999 + 2)))
    }
}
