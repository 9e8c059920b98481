import RingfenceAddresses
import RingfenceSockets

/// A peer the kernel fence refuses on every port until the ban's timeout, whatever the
/// allowlists say (`proxyctl kick --ban`), or, banned by a guard's strikes, refuses new
/// connections to that guard's ports (`guardName`). Bans live in the table's `bans.v4` and
/// `bans.v6` interval sets (a guard's: `GUARD.bans_v4`, `_v6`) with per-element timeouts, so
/// they lapse in the kernel even when proxyd is down.
public struct Ban: Hashable, Sendable {
    /// The banned block, as nft lists it: `10.0.0.3`, `10.0.0.0/24`, `fd00::/64`.
    public var peer: String
    /// Seconds left (whole seconds: the kernel's resolution in listings).
    public var secondsLeft: Int
    /// The relay or broker guard whose strikes banned the peer, from new connections to its
    /// ports only (`ban_after`); nil for a ban on every port (`kick --ban`).
    public var guardName: String?

    public init(peer: String, secondsLeft: Int, guardName: String? = nil) {
        self.peer = peer
        self.secondsLeft = secondsLeft
        self.guardName = guardName
    }

    /// The longest ban: long enough for any incident, short enough that a forgotten ban lapses.
    public static let maxDuration = Duration.seconds(30 * 86_400)

    /// The bans in a listing of the ban sets (or of `guardName`'s strike-ban sets).
    static func bans(_ listing: String, guardName: String? = nil) -> [Ban] {
        NFTListing.elements(listing).compactMap { element in
            guard let peer = element.key.first else { return nil }
            return Ban(peer: peer, secondsLeft: element.expires ?? 0, guardName: guardName)
        }
    }

    /// The block a ban element names, for comparing with a block to ban or lift.
    var block: CIDR? {
        if let block = try? CIDR(parsing: peer) { return block }
        return IPAddress(peer).flatMap { try? CIDR(address: $0, prefixLength: $0.bitWidth) }
    }

    /// The element text of `block` in the ban set of its family, with a timeout.
    static func element(_ block: CIDR, for duration: Duration) -> (set: String, text: String) {
        let family: NameScheme.Family = block.address.isIPv4 ? .v4 : .v6
        return (NameScheme.bansSet(family), "\(block) timeout \(duration.milliseconds)ms")
    }

    /// The nft commands that put `bans` back into `table` with the time each had left: a ban on
    /// every port into `bans.v4` / `bans.v6`, a strike ban into its guard's set. Lapsed bans and
    /// peers that name no block are left out. A table replace appends them to its own script,
    /// so the new table refuses banned peers from its first instant: put back afterwards, in
    /// transactions of their own, they left a banned but allowed peer a window in which to
    /// connect (docs/reliability.md, "Crash and restart").
    static func restoreScript(_ bans: [Ban], table: String) -> String {
        var out = ""
        for ban in bans where ban.secondsLeft > 0 {
            guard let block = ban.block else { continue }
            let timeout = "timeout \(Duration.seconds(ban.secondsLeft).milliseconds)ms"
            if let guardName = ban.guardName {
                // Strike-ban sets are plain address sets: the peer is one address.
                let set = NameScheme.strikeBanSet(guardName, block.address.isIPv4 ? .v4 : .v6)
                out += "add element inet \(table) \(set) { \(block.address) \(timeout) }\n"
            } else {
                let (set, text) = element(block, for: .seconds(ban.secondsLeft))
                out += "add element inet \(table) \(set) { \(text) }\n"
            }
        }
        return out
    }
}
