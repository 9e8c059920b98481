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
        let before = Dictionary(uniqueKeysWithValues: sets(of: old).map { ($0.name, $0.elements) })
        return sets(of: new).compactMap { between(before[$0.name] ?? [], $0.elements, set: $0.name) }
    }

    /// Both sets of each guard in `allowlists`, `GUARD_v4` and `GUARD_v6`, with the elements
    /// they hold for its allowlist, by guard name.
    public static func sets(of allowlists: [String: AddressSet]) -> [(name: String, elements: [SetElement])] {
        allowlists.sorted { $0.key < $1.key }.flatMap { name, allow in
            let elements = SetElement.elements(of: allow)
            return [("\(name)_v4", elements.ipv4), ("\(name)_v6", elements.ipv6)]
        }
    }

    /// Each guard's allowlist, by name.
    public static func allowlists(_ policy: Policy) -> [String: AddressSet] {
        Dictionary(policy.guards.map { ($0.name, $0.allow) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether a set of `oldCount` elements that is to hold `newCount` (and not the same ones) is
    /// flushed, known from the sizes alone: at least oldCount − newCount elements go, which from
    /// twice the new size on is a diff as big as the set (a million elements shrinking to two, say).
    static func isFlush(shrinkingFrom oldCount: Int, to newCount: Int) -> Bool {
        oldCount > 0 && oldCount >= 2 * newCount
    }

    /// The change from elements `old` to `new` of one set, nil if they are the same.
    public static func between(_ old: [SetElement], _ new: [SetElement], set: String) -> SetChange? {
        guard old != new else { return nil }
        if isFlush(shrinkingFrom: old.count, to: new.count) { return SetChange(set: set, flush: true, removed: [], added: new) }
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
