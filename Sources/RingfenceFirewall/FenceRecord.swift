import RingfencePolicy

/// One source the kernel fence refused (enforce) or would have refused (audit): which guard,
/// from where, to which protocol and port, how often, and when first and last. Read from the
/// guard's record sets (`NameScheme.seenSet`, `firstSet`), which hold at most
/// `NameScheme.recordCapacity` keys each and forget a key a day after it was last seen.
public struct FenceRecord: Hashable, Sendable {
    public var guardName: String
    /// Which of the guard's sets it was read from: `audit` (it passed) or `enforce` (refused).
    public var mode: Guard.Mode
    public var source: String
    /// `tcp` or `udp`.
    public var transport: String
    public var port: UInt16
    /// Enforce: packets refused. Audit: flows that would have been refused.
    public var count: UInt64
    /// Seconds since the key was first and last seen (whole seconds: the kernel's resolution here).
    public var firstSeenSecondsAgo: Int
    public var lastSeenSecondsAgo: Int

    public init(
        guardName: String, mode: Guard.Mode, source: String, transport: String, port: UInt16, count: UInt64, firstSeenSecondsAgo: Int,
        lastSeenSecondsAgo: Int
    ) {
        self.guardName = guardName
        self.mode = mode
        self.source = source
        self.transport = transport
        self.port = port
        self.count = count
        self.firstSeenSecondsAgo = firstSeenSecondsAgo
        self.lastSeenSecondsAgo = lastSeenSecondsAgo
    }

    /// The records of one guard in one mode from the listings of its `seen` and `first` sets
    /// (one JSON document per family). A key missing from `first` (lost to a full set, or
    /// expired a day after it was first seen while the source kept coming) is taken as first
    /// seen a whole timeout ago, the most the sets can tell.
    static func records(guardName: String, mode: Guard.Mode, seen: [String], first: [String]) -> [FenceRecord] {
        let timeout = NameScheme.recordTimeoutSeconds
        var firstAgo: [[String]: Int] = [:]
        for element in first.flatMap(NFTListing.elements) {
            firstAgo[element.key] = timeout - (element.expires ?? timeout)
        }
        return seen.flatMap(NFTListing.elements).compactMap { element in
            guard element.key.count == 3, let port = UInt16(element.key[2]) else { return nil }
            let lastAgo = timeout - (element.expires ?? timeout)
            return FenceRecord(
                guardName: guardName, mode: mode, source: element.key[0], transport: element.key[1], port: port,
                count: element.packets ?? 0, firstSeenSecondsAgo: max(firstAgo[element.key] ?? timeout, lastAgo),
                lastSeenSecondsAgo: lastAgo)
        }
    }
}
