import RingfenceAddresses
import RingfenceControl
import RingfenceFirewall
import RingfencePolicy
import RingfenceStatus

/// What a reload will do, worked out before anything changes: which relay and broker guards
/// start, restart, take the new policy in place or stop, and which lines of the nftables script
/// change. Pure; the daemon carries it out, and a dry run only reports it.
struct ReloadPlan {
    /// Guards new to the policy.
    var added: [Guard] = []
    /// Guards whose name stays but whose listen port, upstream, ports or protocol changed: the
    /// running guard stops and a new one starts, so their connections are cut.
    var restarted: [Guard] = []
    /// Guards that take a new allowlist or new limits in place.
    var updated: [Guard] = []
    /// Names of running guards the new policy no longer has.
    var removed: [String] = []
    var rules: ReloadReport.RuleChanges
    /// Firewall and host guards, which live in the kernel only: added, removed, and changed
    /// (allowlist, ports, mode); the fence's change carries them out. Names, for the report.
    var kernelAdded: [String] = []
    var kernelRemoved: [String] = []
    var kernelUpdated: [String] = []

    /// The running guards this plan stops, each with the reason its connections are cut:
    /// `guard-removed` or `guard-restarted`.
    var stopped: [(name: String, reason: CutReason)] {
        removed.map { ($0, .guardRemoved) } + restarted.map { ($0.name, .guardRestarted) }
    }

    /// - Parameters:
    ///   - running: the relay and broker guards running now, by name, as last applied.
    init(from current: Policy?, running: [String: Guard], to next: Policy) {
        var names: Set<String> = []
        for spec in next.guards where !spec.isKernelOnly {
            names.insert(spec.name)
            guard let old = running[spec.name] else {
                added.append(spec)
                continue
            }
            if !spec.canBeUpdatedInPlace(from: old) {
                restarted.append(spec)
            } else if spec != old {
                updated.append(spec)
            }
        }
        removed = running.keys.filter { !names.contains($0) }.sorted()
        let before = Dictionary((current?.guards ?? []).filter(\.isKernelOnly).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for spec in next.guards where spec.isKernelOnly {
            if let old = before[spec.name] {
                if old != spec { kernelUpdated.append(spec.name) }
            } else {
                kernelAdded.append(spec.name)
            }
        }
        let kernelNames = Set(next.guards.filter(\.isKernelOnly).map(\.name))
        kernelRemoved = before.keys.filter { !kernelNames.contains($0) }.sorted()
        // Rules and set definitions line by line, allowlists interval by interval: rendering and
        // comparing 10,000 elements as text took longer than applying them.
        rules = Self.diff(current.map(RulesetRenderer.skeleton) ?? "", RulesetRenderer.skeleton(next))
        let elements = Self.elementChanges(from: current.map(SetChange.allowlists) ?? [:], to: SetChange.allowlists(next))
        rules.removed += elements.removed
        rules.added += elements.added
    }

    /// The allowlist intervals each guard's sets lose and gain, as `element GUARD_v4 { … }` lines.
    static func elementChanges(
        from before: [String: AddressSet], to after: [String: AddressSet]
    ) -> ReloadReport.RuleChanges {
        func lines(_ name: String, _ set: AddressSet) -> [String] {
            set.ipv4Elements.map { "element \(name)_v4 { \($0) }" } + set.ipv6Elements.map { "element \(name)_v6 { \($0) }" }
        }
        var changes = ReloadReport.RuleChanges(removed: [], added: [])
        for name in Set(before.keys).union(after.keys).sorted() {
            let previous = before[name] ?? AddressSet()
            let next = after[name] ?? AddressSet()
            guard previous != next else { continue }
            changes.removed += lines(name, previous.intervals(notIn: next))
            changes.added += lines(name, next.intervals(notIn: previous))
        }
        return changes
    }

    /// Lines of `old` not in `new`, and of `new` not in `old`, each in its script's order;
    /// blank lines and comments left out.
    static func diff(_ old: String, _ new: String) -> ReloadReport.RuleChanges {
        func lines(_ script: String) -> [String] {
            script.split(separator: "\n").map { String($0.drop { $0 == " " || $0 == "\t" }) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        }
        /// The lines of `lines` left once each line of `other` has taken away one equal line.
        func minus(_ lines: [String], _ other: [String]) -> [String] {
            var unmatched = Dictionary(other.map { ($0, 1) }, uniquingKeysWith: +)
            return lines.filter { line in
                guard let count = unmatched[line], count > 0 else { return true }
                unmatched[line] = count - 1
                return false
            }
        }
        let before = lines(old)
        let after = lines(new)
        return .init(removed: minus(before, after), added: minus(after, before))
    }
}
