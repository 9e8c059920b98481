import CNFTNetlink
import RingfenceAddresses
import RingfencePolicy
import RingfenceSockets

/// A relay or broker guard's strike bans (`ban_after`): the peers whose new connections to its
/// ports the kernel refuses until their element's timeout, in the guard's sets
/// `GUARD.bans_v4` and `GUARD.bans_v6` (docs/nftables.md, "Strike bans").
extension Firewall {
    /// Bans `peer` from new connections to `guardName`'s ports for `duration`, over netlink in
    /// one transaction (a ban of a peer already banned is renewed: deleted and added again).
    /// Reloads that keep the table keep the element; a table replace puts it back (`apply`).
    public func strikeBan(_ peer: IPAddress, guardName: String, for duration: Duration, table: String) throws(FirewallError) {
        let set = NameScheme.strikeBanSet(guardName, peer.isIPv4 ? .v4 : .v6)
        let key = Self.keyBytes(peer)
        let socket = try NFTNetlink.openSocket()
        defer { mnl_socket_close(socket) }
        let held = try NFTNetlink.dump(set, table: table, on: socket).contains { $0.key == key }
        let milliseconds = UInt64(max(1, duration.milliseconds))
        var messages: [NFTNetlink.ElementMessage] = []
        if held {
            messages.append(NFTNetlink.ElementMessage(type: NFT_MSG_DELSETELEM, set: set, elements: [NFTNetlink.RawElement(key: key)]))
        }
        messages.append(
            NFTNetlink.ElementMessage(
                type: NFT_MSG_NEWSETELEM, set: set, elements: [NFTNetlink.RawElement(key: key, timeoutMilliseconds: milliseconds)]))
        try NFTNetlink.commit(messages, table: table, exclusive: false, on: socket)
    }

    /// The strike bans of every relay and broker guard of `policy`, soonest to lapse first. A
    /// guard whose sets cannot be read (not yet in the kernel) has none.
    public func strikeBans(_ policy: Policy) -> [Ban] {
        var out: [Ban] = []
        for item in policy.guards where NameScheme.hasStrikeBans(item) {
            for family in NameScheme.Family.allCases {
                let set = NameScheme.strikeBanSet(item.name, family)
                guard let listing = try? lister.run("list set inet \(policy.firewall.table) \(set)") else { continue }
                out += Ban.bans(listing, guardName: item.name)
            }
        }
        return out.sorted { ($0.secondsLeft, $0.peer, $0.guardName ?? "") < ($1.secondsLeft, $1.peer, $1.guardName ?? "") }
    }

    /// Lifts every strike ban of exactly `peer`; returns the guards it was lifted from.
    public func liftStrikeBans(_ peer: IPAddress, _ policy: Policy) throws(FirewallError) -> [String] {
        let guards = strikeBans(policy).filter { IPAddress($0.peer) == peer }.compactMap(\.guardName)
        let family: NameScheme.Family = peer.isIPv4 ? .v4 : .v6
        let script = guards.map { "delete element inet \(policy.firewall.table) \(NameScheme.strikeBanSet($0, family)) { \(peer) }\n" }
        guard !script.isEmpty else { return [] }
        try nft.run(script.joined())
        return guards
    }

    /// `peer` as the kernel keys it: 4 or 16 bytes, network order.
    static func keyBytes(_ peer: IPAddress) -> [UInt8] {
        switch peer {
        case .v4(let value): return SetElement(key: UInt128(value), byteCount: 4, isIntervalEnd: false, isOpenInterval: false).keyBytes
        case .v6(let value): return SetElement(key: value, byteCount: 16, isIntervalEnd: false, isOpenInterval: false).keyBytes
        }
    }

    /// Puts back strike bans read before a table replace, with the time they had left.
    func restore(strikeBans bans: [Ban], table: String) {
        for ban in bans where ban.secondsLeft > 0 {
            guard let guardName = ban.guardName, let peer = IPAddress(ban.peer) else { continue }
            try? strikeBan(peer, guardName: guardName, for: .seconds(ban.secondsLeft), table: table)
        }
    }
}
