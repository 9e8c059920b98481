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
/// - one IPv4 and one IPv6 interval set per guard, holding its allowlist;
/// - chain `fence` (filter, prerouting, priority -150): before conntrack could accept an
///   established flow and before any redirect, so removing a peer cuts its live connections
///   too. Loopback is accepted; RSTs to guarded ports are let through so that the server's socket
///   of a cut connection closes; then anything to a guarded port from outside the set is refused,
///   with a rule per family (an `ip saddr` rule never matches IPv6);
/// - for relay and broker guards, chain `divert` (nat, prerouting, dstnat) redirects remote
///   traffic for the guarded port to the guard's listen port, and chain `shield` (filter, input)
///   refuses that listen port to anything that did not come through the redirect.
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
            let sets = [("v4", "ipv4_addr", item.allow.ipv4Elements), ("v6", "ipv6_addr", item.allow.ipv6Elements)]
            for (suffix, type, elements) in sets {
                out += "add set inet \(table) \(item.name)_\(suffix) { type \(type); flags interval;"
                if !before.contains(item.name) && !elements.isEmpty {
                    out += " elements = {\n" + elements.map { "\t\($0)," }.joined(separator: "\n") + "\n}"
                }
                out += " }\n"
            }
        }
        let chains = chains(policy)
        for chain in chains {
            out += "add chain inet \(table) \(chain.name) { \(chain.hook); policy accept; }\n"
            out += "flush chain inet \(table) \(chain.name)\n"
            out += chain.rules.map { "add rule inet \(table) \(chain.name) \($0)\n" }.joined()
        }
        for chain in Self.chains(previous) where !chains.contains(where: { $0.name == chain.name }) {
            out += "flush chain inet \(table) \(chain.name)\ndelete chain inet \(table) \(chain.name)\n"
        }
        let kept = Set(policy.guards.map(\.name))
        for item in previous.guards where !kept.contains(item.name) {
            out += "delete set inet \(table) \(item.name)_v4\ndelete set inet \(table) \(item.name)_v6\n"
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
            out += set(name: "\(item.name)_v4", type: "ipv4_addr", elements: elements ? item.allow.ipv4Elements : [], guardName: item.name)
            out += set(name: "\(item.name)_v6", type: "ipv6_addr", elements: elements ? item.allow.ipv6Elements : [], guardName: item.name)
        }
        for chain in chains(policy) {
            out += "\tchain \(chain.name) {\n\t\t\(chain.hook); policy accept;\n"
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

    private static func set(name: String, type: String, elements: [String], guardName: String) -> String {
        var out = "\tset \(name) {\n\t\ttype \(type)\n\t\tflags interval\n"
        if !elements.isEmpty {
            out += "\t\telements = {\n"
            // One element per line keeps diffs of large sets readable and lines short.
            out += elements.map { "\t\t\t\($0)," }.joined(separator: "\n")
            out += "\n\t\t}\n"
        }
        return out + "\t}\n"
    }

    /// A base chain of the table: its name, its `type … hook … priority …` clause and its rules.
    struct Chain: Equatable {
        let name: String
        let hook: String
        let rules: [String]
    }

    /// The base chains `policy` needs, in the order they are written.
    static func chains(_ policy: Policy) -> [Chain] {
        var out = [fenceChain(policy)]
        let diverted = policy.guards.filter { $0.listenPort != nil }
        if !diverted.isEmpty {
            out.append(divertChain(diverted))
            out.append(shieldChain(diverted))
        }
        return out
    }

    private static func fenceChain(_ policy: Policy) -> Chain {
        let refuse = policy.firewall.deny == .reject ? "reject with tcp reset" : "drop"
        var rules = ["iif \"lo\" accept"]
        let allPorts = policy.guards.flatMap(\.ports)
        if !allPorts.isEmpty {
            rules.append("tcp dport \(portMatch(allPorts)) tcp flags rst accept")
        }
        for item in policy.guards {
            let ports = portMatch(item.ports)
            rules.append("meta nfproto ipv4 tcp dport \(ports) ip saddr != @\(item.name)_v4 \(refuse) comment \"\(item.name)\"")
            rules.append("meta nfproto ipv6 tcp dport \(ports) ip6 saddr != @\(item.name)_v6 \(refuse) comment \"\(item.name)\"")
        }
        return Chain(name: "fence", hook: "type filter hook prerouting priority -150", rules: rules)
    }

    /// `redirect` remote traffic for each guarded port to the guard's listen port.
    private static func divertChain(_ guards: [Guard]) -> Chain {
        listenChain("divert", "type nat hook prerouting priority dstnat", guards) { item, listen in
            "iif != \"lo\" tcp dport \(portMatch(item.ports)) redirect to :\(listen)"
        }
    }

    /// Refuse each listen port to anything that did not arrive through the redirect.
    private static func shieldChain(_ guards: [Guard]) -> Chain {
        listenChain("shield", "type filter hook input priority filter", guards) { _, listen in
            "tcp dport \(listen) ct status ! dnat reject with tcp reset"
        }
    }

    /// A base chain with one rule, commented with its guard's name, per guard with a listen port.
    private static func listenChain(
        _ name: String, _ hook: String, _ guards: [Guard], rule: (Guard, UInt16) -> String
    ) -> Chain {
        var rules: [String] = []
        for item in guards {
            guard let listen = item.listenPort else { continue }
            rules.append("\(rule(item, listen)) comment \"\(item.name)\"")
        }
        return Chain(name: name, hook: hook, rules: rules)
    }

    private static func portMatch(_ ports: [UInt16]) -> String {
        ports.count == 1 ? "\(ports[0])" : "{ " + ports.map(String.init).joined(separator: ", ") + " }"
    }

    /// Keeps a file name from breaking out of its comment line.
    private static func sanitize(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
