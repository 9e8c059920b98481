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
}
