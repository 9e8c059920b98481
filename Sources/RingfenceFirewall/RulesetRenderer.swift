import RingfenceAddresses
import RingfencePolicy

/// Renders a policy as an nftables script: a pure function of the policy, so that what
/// `proxyctl nft` prints is exactly what `proxyd` applies at start, and golden files can pin it
/// down. Reloads change the table in place instead (`refill`, `restructure`, and set elements
/// over netlink), but always into this same table.
///
/// The script replaces Ringfence's own `inet` table whole, in one transaction: `table` (creates it
/// if absent, so the delete cannot fail), `delete table`, then the new definition. A bare
/// `flush table` would keep old set elements. No other table is named. Inside the table:
/// - per guard, an IPv4 and an IPv6 interval set holding its allowlist, the dynamic sets that
///   record what it refused (`NameScheme`), and its counters;
/// - the ban sets (`proxyctl kick --ban`), with timeouts;
/// - the chains of `FenceChains`.
public enum RulesetRenderer {
    /// The full script for `policy`.
    /// - Parameter previousTable: the table name of the policy being replaced, when it differs;
    ///   that table is deleted in the same transaction, so a rename never leaves an old fence behind.
    public static func render(_ policy: Policy, previousTable: String? = nil) -> String {
        render(policy, previousTable: previousTable, elements: true)
    }

    /// The table without its sets' elements or the header comments: two policies with the same
    /// skeleton differ only in their allowlists, which `NFTNetlink` or `refill` change without
    /// touching a chain.
    public static func skeleton(_ policy: Policy) -> String {
        render(policy, previousTable: nil, elements: false, header: false)
    }

    /// Empties and refills every set of the policy's table, in one transaction, leaving its
    /// chains and rules in place. Replacing the whole table while packets flow was seen to reset
    /// established connections of peers that stay allowed (kernel 6.18: for an instant the fence
    /// refused them); changing only the sets' elements never did.
    public static func refill(_ policy: Policy) -> String {
        policy.guards.map { refill(policy.firewall.table, $0) }.joined()
    }

    /// Changes the structure of `previous`'s table into that of `policy`, in place and in one
    /// transaction, for a reload that adds, removes or moves guards. The table, its base chains
    /// and the sets of guards that stay are kept, so no hook is unregistered and no established
    /// connection meets a missing fence: sets of new guards are added with their elements, each
    /// chain's rules are flushed and written again, and the chains and sets the new policy no
    /// longer has are deleted last, once no rule refers to them.
    ///
    /// The sets of guards in both policies keep their elements: nft would read every element
    /// back to change them, so `Firewall` changes them over netlink before and after.
    /// Both policies must name the same table.
    public static func restructure(from previous: Policy, to policy: Policy) -> String {
        let table = policy.firewall.table
        var out = header(policy)
        out += "add table inet \(table)\n"
        let before = Set(previous.guards.map(\.name))
        for item in policy.guards {
            for set in NameScheme.sets(of: item, elements: !before.contains(item.name)) {
                out += "add \(set.keyword) inet \(table) \(set.name) { \(set.body)"
                if !set.elements.isEmpty {
                    out += " elements = {\n" + set.elements.map { "\t\($0)," }.joined(separator: "\n") + "\n}"
                }
                out += " }\n"
            }
            out += NameScheme.counters(of: item).map { "add counter inet \(table) \($0)\n" }.joined()
        }
        out += NameScheme.tableSets.map { "add set inet \(table) \($0.name) { \($0.body) }\n" }.joined()
        out += "add counter inet \(table) \(NameScheme.bansCounter)\n"
        let chains = FenceChains.chains(policy)
        for chain in chains {
            out += "add chain inet \(table) \(chain.name)" + (chain.hook.map { " { \($0); policy accept; }" } ?? "") + "\n"
            out += "flush chain inet \(table) \(chain.name)\n"
            out += chain.rules.map { "add rule inet \(table) \(chain.name) \($0)\n" }.joined()
        }
        // Base chains first, so that no rule still jumps to a regular chain when it goes.
        let gone = FenceChains.chains(previous).filter { old in !chains.contains { $0.name == old.name } }
        for chain in gone.sorted(by: { ($0.hook == nil ? 1 : 0) < ($1.hook == nil ? 1 : 0) }) {
            out += "flush chain inet \(table) \(chain.name)\ndelete chain inet \(table) \(chain.name)\n"
        }
        // By set name, so that a guard that stays but stops discovering loses its run-time sets.
        let kept = Set(policy.guards.map(\.name))
        let keptSets = Set(policy.guards.flatMap { NameScheme.sets(of: $0, elements: false).map(\.name) })
        for item in previous.guards {
            out += NameScheme.sets(of: item, elements: false).filter { !keptSets.contains($0.name) }
                .map { "delete \($0.keyword) inet \(table) \($0.name)\n" }.joined()
            guard !kept.contains(item.name) else { continue }
            out += NameScheme.counters(of: item).map { "delete counter inet \(table) \($0)\n" }.joined()
        }
        return out
    }

    /// `flush set` and `add element` for both sets of one guard.
    private static func refill(_ table: String, _ item: Guard) -> String {
        var out = ""
        for (suffix, elements) in [("v4", item.allow.ipv4Elements), ("v6", item.allow.ipv6Elements)] {
            out += "flush set inet \(table) \(item.name)_\(suffix)\n"
            if !elements.isEmpty {
                out += "add element inet \(table) \(item.name)_\(suffix) {\n"
                out += elements.map { "\t\($0)," }.joined(separator: "\n")
                out += "\n}\n"
            }
        }
        return out
    }

    private static func header(_ policy: Policy) -> String {
        "#!/usr/sbin/nft -f\n"
            + "# Generated by Ringfence from \(sanitize(policy.source)). Do not edit: re-run `proxyctl nft`.\n"
    }

    private static func render(_ policy: Policy, previousTable: String?, elements: Bool, header: Bool = true) -> String {
        let table = policy.firewall.table
        var out = ""
        if header {
            out += Self.header(policy) + "# Replaces table inet \(table) atomically and touches no other table.\n"
        }
        if let previousTable, previousTable != table {
            out += "table inet \(previousTable)\ndelete table inet \(previousTable)\n"
        }
        out += "table inet \(table)\ndelete table inet \(table)\n"
        out += "table inet \(table) {\n"
        for item in policy.guards {
            if item.discovers && header {
                out += "\t# \(item.name)'s discovered XPUBs: proxyd fills these four at run time; the policy names none.\n"
            }
            out += NameScheme.sets(of: item, elements: elements).map(set).joined()
            out += NameScheme.counters(of: item).map { "\tcounter \($0) {\n\t}\n" }.joined()
        }
        out += NameScheme.tableSets.map(set).joined()
        out += "\tcounter \(NameScheme.bansCounter) {\n\t}\n"
        for chain in FenceChains.chains(policy) {
            out += "\tchain \(chain.name) {\n" + (chain.hook.map { "\t\t\($0); policy accept;\n" } ?? "")
            out += chain.rules.map { "\t\t\($0)\n" }.joined()
            out += "\t}\n"
        }
        out += "}\n"
        return out
    }

    /// The script that removes Ringfence's table, if it exists.
    public static func removal(table: String) -> String {
        "table inet \(table)\ndelete table inet \(table)\n"
    }

    private static func set(_ declaration: NameScheme.SetDeclaration) -> String {
        // One option per line, as nft lists them; one element per line keeps diffs of large sets readable.
        let options = declaration.body.split(separator: ";").map { $0.trimmingPrefix(" ") }.filter { !$0.isEmpty }
        var out = "\t\(declaration.keyword) \(declaration.name) {\n" + options.map { "\t\t\($0)\n" }.joined()
        if !declaration.elements.isEmpty {
            out += "\t\telements = {\n"
            out += declaration.elements.map { "\t\t\t\($0)," }.joined(separator: "\n")
            out += "\n\t\t}\n"
        }
        return out + "\t}\n"
    }

    /// Keeps a file name from breaking out of its comment line.
    private static func sanitize(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
