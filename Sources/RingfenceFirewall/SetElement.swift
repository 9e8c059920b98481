import RingfenceAddresses

/// One element of an nftables interval set as the kernel holds it: an address that starts an
/// interval, or the first address after one ends.
///
/// An `AddressSet` becomes elements exactly as nft 1.0 encodes an interval set, so that a set
/// written over netlink (`NFTNetlink`) lists the same under `nft list` as one nft wrote, and either
/// can later be changed element by element:
/// - an interval `a...b` is a start element `a` and an end element `b + 1`;
/// - an interval that runs to the family's last address has no end element, and its start carries
///   nft's "open interval" mark, so that listings show it as a prefix;
/// - unless the first interval starts at address zero, an end element at zero comes first.
public struct SetElement: Hashable, Sendable, CustomStringConvertible {
    /// The address, as an unsigned integer of `byteCount` bytes.
    public var key: UInt128
    /// 4 (IPv4) or 16 (IPv6).
    public var byteCount: Int
    /// Whether this element ends an interval (`NFT_SET_ELEM_INTERVAL_END`).
    public var isIntervalEnd: Bool
    /// Whether this element starts an interval with no end element. Only a mark for listings:
    /// the kernel tells elements apart by key and interval end alone, and so do `==` and `hash`.
    public var isOpenInterval: Bool

    public static func == (a: SetElement, b: SetElement) -> Bool {
        a.key == b.key && a.byteCount == b.byteCount && a.isIntervalEnd == b.isIntervalEnd
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(byteCount)
        hasher.combine(isIntervalEnd)
    }

    /// The key in network byte order, as the kernel compares it.
    public var keyBytes: [UInt8] {
        (0..<byteCount).map { UInt8(truncatingIfNeeded: key >> UInt128(8 * (byteCount - 1 - $0))) }
    }

    public var description: String {
        let address: IPAddress = byteCount == 4 ? .v4(UInt32(truncatingIfNeeded: key)) : .v6(key)
        return "\(address)\(isIntervalEnd ? " (end)" : "")\(isOpenInterval ? " (open)" : "")"
    }

    /// The elements of `set`'s IPv4 and IPv6 intervals, each list in ascending order.
    public static func elements(of set: AddressSet) -> (ipv4: [SetElement], ipv6: [SetElement]) {
        (elements(set.ipv4, byteCount: 4), elements(set.ipv6, byteCount: 16))
    }

    static func elements<T: FixedWidthInteger & UnsignedInteger>(
        _ intervals: [ClosedRange<T>], byteCount: Int
    ) -> [SetElement] {
        guard let first = intervals.first else { return [] }
        var out: [SetElement] = []
        out.reserveCapacity(intervals.count * 2 + 1)
        if first.lowerBound != 0 {
            out.append(SetElement(key: 0, byteCount: byteCount, isIntervalEnd: true, isOpenInterval: false))
        }
        for interval in intervals {
            let open = interval.upperBound == T.max
            out.append(
                SetElement(
                    key: UInt128(interval.lowerBound), byteCount: byteCount, isIntervalEnd: false, isOpenInterval: open))
            if !open {
                out.append(
                    SetElement(
                        key: UInt128(interval.upperBound) + 1, byteCount: byteCount, isIntervalEnd: true,
                        isOpenInterval: false))
            }
        }
        return out
    }
}
