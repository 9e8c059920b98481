import RingfenceAddresses
import RingfencePolicy

/// The kernel fence of a policy: renders it and, unless `[firewall] apply = false`, applies it,
/// changing as little of the table in force as it can.
public struct Firewall {
    let nft: NFTables
    private let netlink = NFTNetlink()
    /// A second context that prints listings as JSON, for records, bans and counters.
    let lister: NFTables

    public init() throws(FirewallError) {
        nft = try NFTables()
        lister = try NFTables(json: true)
    }

    /// What applying did.
    public enum Outcome: Hashable, Sendable {
        /// The table in force now enforces the policy; `change` says how it got there, and
        /// `refusals` why gentler ways were refused first (empty unless the kernel's table
        /// was not the one last applied).
        case applied(table: String, change: Change, refusals: [String] = [])
        /// `apply = false`: nothing was loaded.
        case renderedOnly
    }

    /// How the table in force was changed, from the least disturbing to the most.
    public enum Change: String, Hashable, Sendable {
        /// The kernel's table was the new policy's already (read back to check).
        case unchanged = "unchanged"
        /// Only the set elements that differ from the kernel's were deleted and added, over netlink.
        case elementsChanged = "set elements changed"
        /// Every set was emptied and filled again; chains untouched.
        case setsRefilled = "sets refilled"
        /// Chains' rules rewritten and sets added or deleted; table and hooks kept.
        case chainsRewritten = "chains rewritten"
        /// The table was deleted and made again.
        case tableReplaced = "table replaced"
    }

    /// Makes the kernel's table enforce `policy`, disturbing as little as it can, each step in
    /// one transaction: with the same table and the same skeleton (only allowlists differ), only
    /// the set elements that differ from what the kernel holds (`NFTNetlink`); with the same
    /// table, chain by chain (`restructure`, three transactions); on the first load or a new
    /// table name, by replacing the table.
    /// Each in-place way assumes the kernel's table has `previous`'s chains and sets; if the
    /// kernel refuses it (the table was changed by hand), the next way is tried, down to
    /// replacing the table whole.
    ///
    /// Replacing the whole table while packets flow was seen to reset established connections
    /// of peers that stay allowed (kernel 6.18: for an instant the fence refused them); changing
    /// sets or rules inside a table that stays never did.
    /// - Parameter previous: the policy in force, whose table is removed if the name changed.
    @discardableResult
    public func apply(_ policy: Policy, replacing previous: Policy? = nil) throws(FirewallError) -> Outcome {
        // With apply = false a table loaded earlier stays: turning application off must not open the fence.
        guard policy.firewall.apply else { return .renderedOnly }
        let table = policy.firewall.table
        let previousTable = previous.flatMap { $0.firewall.apply ? $0.firewall.table : nil }
        var refusals: [String] = []
        /// Tries one way, whose body says what it changed; on a refusal, notes why and lets the
        /// caller try the next.
        func attempt(_ way: Change, _ body: () throws(FirewallError) -> Change) -> Outcome? {
            do {
                return .applied(table: table, change: try body(), refusals: refusals)
            } catch {
                refusals.append("\(way.rawValue): \(error.description)")
                return nil
            }
        }
        if let previous, previousTable == table {
            if RulesetRenderer.skeleton(previous) == RulesetRenderer.skeleton(policy) {
                if let done = attempt(.elementsChanged, { () throws(FirewallError) in
                    let changes = try netlink.changes(
                        to: SetChange.allowlists(policy), table: table, expected: SetChange.allowlists(previous))
                    try netlink.commit(changes, table: table)
                    return changes.isEmpty ? .unchanged : .elementsChanged
                }) {
                    return done
                }
                if let done = attempt(.setsRefilled, { () throws(FirewallError) in
                    try nft.run(RulesetRenderer.refill(policy))
                    return .setsRefilled
                }) {
                    return done
                }
            } else if let done = attempt(.chainsRewritten, { () throws(FirewallError) in
                try restructure(from: previous, to: policy)
                return .chainsRewritten
            }) {
                return done
            }
        }
        // Bans outlive a replaced table: the kernel's are read first and put back with the time they had left.
        let bans = (try? self.bans(table: table)) ?? []
        // So do the strike bans of guards that stay (read by the new policy's set names).
        let strikeBans = self.strikeBans(policy)
        // And the discover guards' run-time elements: a discovered XPUB's port stays fenced and
        // redirected as it was (to a broker perhaps gone: refused, as while proxyd was down)
        // until the daemon's discovery takes it over or releases it. Emptied, the port would be
        // the engine's, open to allowed peers, until its new redirect (docs/reliability.md).
        let discovered = self.discoveredElements(policy)
        let script = RulesetRenderer.render(policy, previousTable: previousTable)
        // In the replacing transaction itself, so that no instant of the new table lacks them.
        let restored = Ban.restoreScript(bans + strikeBans, table: table)
            + discovered.map { $0.elements.restoreScript(guardName: $0.guardName, table: table) }.joined()
        do throws(FirewallError) {
            try nft.run(script + restored)
        } catch {
            guard !restored.isEmpty else { throw error }
            // A ban the new table will not take must not stop the fence: the table alone, then
            // each ban on its own, as far as they go.
            try nft.run(script)
            for ban in bans where ban.secondsLeft > 0 {
                guard let block = ban.block else { continue }
                try? self.ban(block, for: .seconds(ban.secondsLeft), table: table)
            }
            restore(strikeBans: strikeBans, table: table)
            for (guardName, elements) in discovered {
                try? netlink.change(guardName: guardName, table: table, elements.changes)
            }
        }
        return .applied(table: table, change: .tableReplaced, refusals: refusals)
    }

    /// The run-time elements the kernel's table holds now for each discover guard of `policy`
    /// (none when the table or the guard's sets do not exist yet).
    private func discoveredElements(_ policy: Policy) -> [(guardName: String, elements: DiscoveryElements)] {
        policy.guards.filter(\.discovers).compactMap { item in
            guard let elements = try? netlink.discovered(guardName: item.name, table: policy.firewall.table),
                !elements.ports.isEmpty
            else { return nil }
            return (item.name, elements)
        }
    }

    /// A structural change in three transactions, each never more open than the policy before
    /// it or the one after: the sets of guards that stay shrink to what both policies allow
    /// them (netlink), the structure changes with those sets as they are (nft), then the sets
    /// grow to the new allowlists (netlink). A peer allowed by both policies is allowed
    /// throughout, so its connections carry on; nft never has to read a large set back.
    private func restructure(from previous: Policy, to policy: Policy) throws(FirewallError) {
        let table = policy.firewall.table
        let before = SetChange.allowlists(previous)
        var kept: [String: AddressSet] = [:]
        var both: [String: AddressSet] = [:]
        for (name, allow) in SetChange.allowlists(policy) {
            guard let old = before[name] else { continue }
            kept[name] = allow
            both[name] = old.intersection(allow)
        }
        try netlink.commit(try netlink.changes(to: both, table: table), table: table)
        try nft.run(RulesetRenderer.restructure(from: previous, to: policy))
        // The kept sets now hold `both` exactly, as just committed: no need to read them again.
        try netlink.commit(SetChange.changes(from: both, to: kept), table: table)
    }

    /// Changes discover guard `discoverGuard`'s run-time sets (the XPUB ports it covers, those
    /// held while classified, the redirect map and its brokers' listen ports), all `changes` in
    /// one transaction over netlink; idempotent: holding a port held, or releasing one absent,
    /// is no error. Reloads that keep the table (`apply`'s in-place ways) keep these elements;
    /// a table replace (`Change.tableReplaced`) empties them, and callers must then put back
    /// what they still serve (compare with `discovered`).
    public func change(table: String, discoverGuard: String, _ changes: [DiscoveryChange]) throws(FirewallError) {
        try netlink.change(guardName: discoverGuard, table: table, changes)
    }

    /// What the kernel holds now for discover guard `discoverGuard`, for resynchronising after a
    /// reload or a table replace: its covered ports, those held, and the redirect map.
    public func discovered(
        table: String, discoverGuard: String
    ) throws(FirewallError) -> (ports: Set<UInt16>, hold: Set<UInt16>, divert: [UInt16: UInt16]) {
        let held = try netlink.discovered(guardName: discoverGuard, table: table)
        return (held.ports, held.hold, held.divert)
    }

    /// What every guard of `policy` refused (or, in audit mode, would have), busiest first.
    public func records(_ policy: Policy) throws(FirewallError) -> [FenceRecord] {
        let table = policy.firewall.table
        var out: [FenceRecord] = []
        for item in policy.guards {
            for mode in Guard.Mode.allCases {
                /// One JSON document per family's set.
                func listing(_ name: (String, NameScheme.Family, Guard.Mode) -> String) throws(FirewallError) -> [String] {
                    var texts: [String] = []
                    for family in NameScheme.Family.allCases {
                        texts.append(try lister.run("list set inet \(table) \(name(item.name, family, mode))"))
                    }
                    return texts
                }
                let seen = try listing(NameScheme.seenSet)
                let first = try listing(NameScheme.firstSet)
                out += FenceRecord.records(guardName: item.name, mode: mode, seen: seen, first: first)
            }
        }
        return out.sorted { ($1.count, $0.guardName, $0.source, $0.port) < ($0.count, $1.guardName, $1.source, $1.port) }
    }

    /// The bans in force, soonest to lapse first.
    public func bans(table: String) throws(FirewallError) -> [Ban] {
        var out: [Ban] = []
        for family in NameScheme.Family.allCases {
            out += Ban.bans(try lister.run("list set inet \(table) \(NameScheme.bansSet(family))"))
        }
        return out.sorted { ($0.secondsLeft, $0.peer) < ($1.secondsLeft, $1.peer) }
    }

    /// Bans `block` for `duration`, in one transaction; a ban of the same block is renewed. A
    /// block that overlaps another ban is refused (interval sets hold disjoint elements): lift
    /// that one first.
    public func ban(_ block: CIDR, for duration: Duration, table: String) throws(FirewallError) {
        let element = Ban.element(block, for: duration)
        var script = ""
        for existing in try bans(table: table) {
            guard let other = existing.block, other.first <= block.last, block.first <= other.last else { continue }
            guard other == block else {
                throw FirewallError(
                    kind: .banConflict,
                    detail: "\(block) overlaps the ban of \(existing.peer) (\(existing.secondsLeft)s left); lift it first with `proxyctl unban \(existing.peer)`")
            }
            script += "delete element inet \(table) \(element.set) { \(block) }\n"
        }
        script += "add element inet \(table) \(element.set) { \(element.text) }\n"
        try nft.run(script)
    }

    /// Lifts the ban of exactly `block`; false when there is none.
    public func unban(_ block: CIDR, table: String) throws(FirewallError) -> Bool {
        guard try bans(table: table).contains(where: { $0.block == block }) else { return false }
        let set = NameScheme.bansSet(block.address.isIPv4 ? .v4 : .v6)
        try nft.run("delete element inet \(table) \(set) { \(block) }\n")
        return true
    }

    /// The table's named counters (packets refused per guard and by bans), by name.
    public func counters(table: String) throws(FirewallError) -> [String: UInt64] {
        NFTListing.counters(try lister.run("list counters table inet \(table)"))
    }

    /// Deletes Ringfence's table, if it exists.
    public func remove(table: String) throws(FirewallError) {
        try nft.run(RulesetRenderer.removal(table: table))
    }
}
