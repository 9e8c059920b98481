import RingfenceAddresses
import RingfencePolicy

/// What a reload changes in one nftables set of Ringfence's table: the elements to delete and
/// those to add, or, when that would touch most of the set anyway, a flush and the whole content.
/// Pure; `NFTNetlink` works them out against what the kernel holds and carries a list of them
/// out in one transaction.
public struct SetChange: Hashable, Sendable {
    /// The set's name in the table, `GUARD_v4` or `GUARD_v6`.
    public var set: String
    /// Empty the set first; `added` is then its whole new content and `removed` is empty.
    public var flush: Bool
    public var removed: [SetElement]
    public var added: [SetElement]

    /// The changes that turn sets holding `old` (by guard name) into sets holding `new`, for
    /// the names in `new`; one per set whose content differs.
    public static func changes(from old: [String: AddressSet], to new: [String: AddressSet]) -> [SetChange] {
        var out: [SetChange] = []
        for (name, allow) in new.sorted(by: { $0.key < $1.key }) {
            let before = SetElement.elements(of: old[name] ?? AddressSet())
            let after = SetElement.elements(of: allow)
            for (suffix, old, new) in [("v4", before.ipv4, after.ipv4), ("v6", before.ipv6, after.ipv6)] {
                if let change = between(old, new, set: "\(name)_\(suffix)") { out.append(change) }
            }
        }
        return out
    }

    /// Each guard's allowlist, by name.
    public static func allowlists(_ policy: Policy) -> [String: AddressSet] {
        Dictionary(policy.guards.map { ($0.name, $0.allow) }, uniquingKeysWith: { first, _ in first })
    }

    /// The change from elements `old` to `new` of one set, nil if they are the same.
    public static func between(_ old: [SetElement], _ new: [SetElement], set: String) -> SetChange? {
        guard old != new else { return nil }
        let oldSet = Set(old)
        let newSet = Set(new)
        let removed = old.filter { !newSet.contains($0) }
        let added = new.filter { !oldSet.contains($0) }
        // Rewriting the whole set costs about what its size does; a diff bigger than that saves nothing.
        if removed.count + added.count >= new.count {
            return SetChange(set: set, flush: true, removed: [], added: new)
        }
        return SetChange(set: set, flush: false, removed: removed, added: added)
    }
}
