import RingfencePolicy

/// The kernel fence of a policy: renders it and, unless `[firewall] apply = false`, applies it.
public struct Firewall {
    private let nft: NFTables

    public init() throws(FirewallError) {
        nft = try NFTables()
    }

    /// What applying did.
    public enum Outcome: Hashable, Sendable {
        /// The table was replaced.
        case applied(table: String)
        /// `apply = false`: nothing was loaded.
        case renderedOnly
    }

    /// Replaces Ringfence's table with the one for `policy`, in one transaction; when only the
    /// allowlists differ from `previous`, refills the sets instead (`RulesetRenderer.refill`).
    /// - Parameter previous: the policy in force, whose table is removed if the name changed.
    @discardableResult
    public func apply(_ policy: Policy, replacing previous: Policy? = nil) throws(FirewallError) -> Outcome {
        // With apply = false a table loaded earlier stays: turning application off must not open the fence.
        guard policy.firewall.apply else { return .renderedOnly }
        let previousTable = previous.flatMap { $0.firewall.apply ? $0.firewall.table : nil }
        if let previous, previousTable == policy.firewall.table,
            RulesetRenderer.skeleton(previous) == RulesetRenderer.skeleton(policy)
        {
            // Only allowlists changed: refill the sets and leave the chains alone, so that
            // packets of connections that stay allowed never meet a table being replaced. If the
            // table was changed behind our back (a set is missing), replace it whole instead.
            if (try? nft.run(RulesetRenderer.refill(policy))) != nil {
                return .applied(table: policy.firewall.table)
            }
        }
        try nft.run(RulesetRenderer.render(policy, previousTable: previousTable))
        return .applied(table: policy.firewall.table)
    }

    /// Deletes Ringfence's table, if it exists.
    public func remove(table: String) throws(FirewallError) {
        try nft.run(RulesetRenderer.removal(table: table))
    }
}
