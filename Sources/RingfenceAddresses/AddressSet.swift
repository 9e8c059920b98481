/// A set of IPv4 and IPv6 addresses, kept as sorted, disjoint, non-adjacent closed intervals.
///
/// This is the form an nftables `flags interval` set takes, so the same value answers the daemon's
/// membership checks and renders the kernel's set: one policy, two checks that agree.
/// Building sorts and merges in O(n log n); `contains` is a binary search, O(log n).
public struct AddressSet: Hashable, Sendable {
    /// IPv4 intervals, sorted by lower bound, disjoint and not touching.
    public private(set) var ipv4: [ClosedRange<UInt32>]
    /// IPv6 intervals (IPv4-mapped addresses live in `ipv4`), sorted, disjoint and not touching.
    public private(set) var ipv6: [ClosedRange<UInt128>]

    /// The empty set: admits nobody.
    public init() {
        ipv4 = []
        ipv6 = []
    }

    /// The union of the given blocks, with overlapping and adjacent blocks merged.
    public init(_ blocks: some Sequence<CIDR>) {
        var v4: [ClosedRange<UInt32>] = []
        var v6: [ClosedRange<UInt128>] = []
        for block in blocks {
            switch (block.first, block.last) {
            case (.v4(let low), .v4(let high)): v4.append(low...high)
            case (.v6(let low), .v6(let high)): v6.append(low...high)
            default: preconditionFailure("a CIDR's bounds share its family")
            }
        }
        ipv4 = AddressSet.merge(v4)
        ipv6 = AddressSet.merge(v6)
    }

    public var isEmpty: Bool { ipv4.isEmpty && ipv6.isEmpty }

    /// Whether `address` lies in the set.
    public func contains(_ address: IPAddress) -> Bool {
        switch address {
        case .v4(let value): return AddressSet.search(ipv4, value)
        case .v6(let value): return AddressSet.search(ipv6, value)
        }
    }

    /// The union of two sets.
    public func union(_ other: AddressSet) -> AddressSet {
        var result = AddressSet()
        result.ipv4 = AddressSet.merge(ipv4 + other.ipv4)
        result.ipv6 = AddressSet.merge(ipv6 + other.ipv6)
        return result
    }

    /// The addresses in both sets.
    public func intersection(_ other: AddressSet) -> AddressSet {
        var result = AddressSet()
        result.ipv4 = AddressSet.intersect(ipv4, other.ipv4)
        result.ipv6 = AddressSet.intersect(ipv6, other.ipv6)
        return result
    }

    /// The intervals of this set that `other` does not hold as they are: each interval whole, so
    /// that a reload can list what changed in an allowlist without rendering all of it.
    public func intervals(notIn other: AddressSet) -> AddressSet {
        var result = AddressSet()
        // A subset of sorted, disjoint, non-touching intervals is still all three.
        let v4 = Set(other.ipv4)
        let v6 = Set(other.ipv6)
        result.ipv4 = ipv4.filter { !v4.contains($0) }
        result.ipv6 = ipv6.filter { !v6.contains($0) }
        return result
    }

    /// The IPv4 intervals as nftables set elements: `a.b.c.d`, `a.b.c.d/n` or `a.b.c.d-e.f.g.h`.
    public var ipv4Elements: [String] {
        ipv4.map { AddressSet.element(.v4($0.lowerBound), .v4($0.upperBound), width: 32) }
    }

    /// The IPv6 intervals as nftables set elements.
    public var ipv6Elements: [String] {
        ipv6.map { AddressSet.element(.v6($0.lowerBound), .v6($0.upperBound), width: 128) }
    }

    /// The interval of the set that holds `address`, as an nftables element (`10.0.0.0/24`,
    /// `10.0.0.5`, `10.0.0.1-10.0.0.6`); nil when the set does not hold it. For people: which
    /// part of an allowlist lets an address in.
    public func element(containing address: IPAddress) -> String? {
        switch address {
        case .v4(let value):
            guard let range = ipv4.first(where: { $0.contains(value) }) else { return nil }
            return AddressSet.element(.v4(range.lowerBound), .v4(range.upperBound), width: 32)
        case .v6(let value):
            guard let range = ipv6.first(where: { $0.contains(value) }) else { return nil }
            return AddressSet.element(.v6(range.lowerBound), .v6(range.upperBound), width: 128)
        }
    }

    static func merge<T: FixedWidthInteger>(_ ranges: [ClosedRange<T>]) -> [ClosedRange<T>] {
        guard !ranges.isEmpty else { return [] }
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        var merged: [ClosedRange<T>] = []
        merged.reserveCapacity(sorted.count)
        var current = sorted[0]
        for next in sorted.dropFirst() {
            // Overlapping or adjacent (current ends right before next starts): extend.
            if current.upperBound == T.max || next.lowerBound <= current.upperBound + 1 {
                current = current.lowerBound...max(current.upperBound, next.upperBound)
            } else {
                merged.append(current)
                current = next
            }
        }
        merged.append(current)
        return merged
    }

    /// Sweeps two sorted, disjoint lists: each overlap of an interval of one with one of the
    /// other is an interval of the result, and overlaps of disjoint intervals are disjoint.
    static func intersect<T: FixedWidthInteger>(_ a: [ClosedRange<T>], _ b: [ClosedRange<T>]) -> [ClosedRange<T>] {
        var result: [ClosedRange<T>] = []
        var i = 0
        var j = 0
        while i < a.count && j < b.count {
            let low = max(a[i].lowerBound, b[j].lowerBound)
            let high = min(a[i].upperBound, b[j].upperBound)
            if low <= high { result.append(low...high) }
            if a[i].upperBound < b[j].upperBound { i += 1 } else { j += 1 }
        }
        return result
    }

    static func search<T: Comparable>(_ ranges: [ClosedRange<T>], _ value: T) -> Bool {
        var low = 0
        var high = ranges.count
        // Find the first interval whose upper bound is >= value.
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < value { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].lowerBound <= value
    }

    /// One interval as a single address, an exact prefix, or a range.
    static func element(_ low: IPAddress, _ high: IPAddress, width: Int) -> String {
        if low == high { return low.description }
        if let prefix = exactPrefix(low, high, width: width) { return "\(low)/\(prefix)" }
        return "\(low)-\(high)"
    }

    static func exactPrefix(_ low: IPAddress, _ high: IPAddress, width: Int) -> Int? {
        let span: UInt128
        switch (low, high) {
        case (.v4(let a), .v4(let b)): span = UInt128(b - a)
        case (.v6(let a), .v6(let b)): span = b - a
        default: return nil
        }
        // A block is exact when span + 1 is a power of two and low is aligned to it.
        let size = span &+ 1
        let hostBits = size == 0 ? 128 : size.trailingZeroBitCount
        guard size == 0 || size.nonzeroBitCount == 1 else { return nil }
        let prefix = width - hostBits
        guard prefix >= 0, (try? CIDR(address: low, prefixLength: prefix)) != nil else { return nil }
        return prefix
    }
}
