/// A guard's running totals, as `proxyctl status` and `/metrics` show them. Every field only
/// grows: the daemon adds a replaced guard's final totals to its successor's, so a reload never
/// sends a counter backwards.
///
/// Fields that do not apply to a guard's kind stay 0 (`messages` for a relay, `violations` for a
/// relay without a protocol gate).
public struct GuardCounters: Codable, Hashable, Sendable {
    /// Connections admitted.
    public var accepted: UInt64 = 0
    /// Connections refused at accept, by reason: `DenialReason`'s raw values (a dictionary keyed
    /// by strings, so that the JSON stays an object).
    public var denied: [String: UInt64] = [:]
    /// Connections closed because a reload no longer allowed their peer.
    public var cutByReload: UInt64 = 0
    /// Bytes read from peers (relay: clients; broker: subscribers).
    public var bytesFromPeers: UInt64 = 0
    /// Bytes written to peers.
    public var bytesToPeers: UInt64 = 0
    /// Bytes read from the upstream (relay: the service; broker: the engine's XPUB).
    public var bytesFromUpstream: UInt64 = 0
    /// Broker: whole messages read from the engine.
    public var messages: UInt64 = 0
    /// Broker: messages queued to subscribers (one per subscriber a message went to).
    public var deliveries: UInt64 = 0
    /// Broker: messages not queued to a full subscriber (`on_overflow = "drop"`).
    public var drops: UInt64 = 0
    /// Broker: subscribers closed because their queue could not be kept: at a high-water mark
    /// (`on_overflow = "disconnect"`), or holding messages without taking one for `max_stall`.
    public var evictions: UInt64 = 0
    /// Broker (`on_overflow = "block"`): times the engine was held back because a subscriber's
    /// queue reached a high-water mark (counted when the episode ends).
    public var holds: UInt64 = 0
    /// Broker: the time those episodes lasted, in nanoseconds.
    public var heldNanoseconds: UInt64 = 0
    /// Connections closed for breaking the protocol (ZMTP, or the TCPStore gate).
    public var violations: UInt64 = 0
    /// Connections to the upstream that completed (broker: handshakes with the engine).
    public var upstreamConnects: UInt64 = 0
    /// Peers that reached `ban_after` strikes in `ban_window` and were handed to the kernel to
    /// ban (`StrikeReason`).
    public var banned: UInt64 = 0

    public init() {}

    /// Refusals for `reason`.
    public subscript(denied reason: DenialReason) -> UInt64 {
        get { denied[reason.rawValue] ?? 0 }
        set { denied[reason.rawValue] = newValue }
    }

    /// Every denial, whatever the reason.
    public var deniedTotal: UInt64 { denied.values.reduce(0, +) }

    /// Field-by-field sum: a retired guard's totals plus its successor's.
    public static func + (lhs: GuardCounters, rhs: GuardCounters) -> GuardCounters {
        var sum = lhs
        sum.accepted += rhs.accepted
        sum.denied.merge(rhs.denied, uniquingKeysWith: +)
        sum.cutByReload += rhs.cutByReload
        sum.bytesFromPeers += rhs.bytesFromPeers
        sum.bytesToPeers += rhs.bytesToPeers
        sum.bytesFromUpstream += rhs.bytesFromUpstream
        sum.messages += rhs.messages
        sum.deliveries += rhs.deliveries
        sum.drops += rhs.drops
        sum.evictions += rhs.evictions
        sum.holds += rhs.holds
        sum.heldNanoseconds += rhs.heldNanoseconds
        sum.violations += rhs.violations
        sum.upstreamConnects += rhs.upstreamConnects
        sum.banned += rhs.banned
        return sum
    }
}
