import RingfencePolicy

/// The chains of Ringfence's table, as a pure function of the policy (docs/nftables.md has the
/// recipe and why each rule sits where it does).
///
/// - `fence` (filter, prerouting, priority -150), before conntrack could accept an established
///   flow and before any redirect, so removing a peer cuts its live connections too:
///   loopback passes; RSTs are let through so that the server's socket of a cut flow closes;
///   banned peers are refused on every port; new connections from peers a relay or broker
///   guard banned after too many strikes are refused on its ports; each named guard's port is refused to sources
///   outside its set (a jump to the guard's refuse chain, one rule per family: an `ip saddr`
///   rule never matches IPv6). With a host guard, the named guards' ports then pass (they
///   decided), as do replies to connections this host opened, anything but TCP and UDP (ICMP)
///   and the public ports; everything else from outside the host guard's set goes to its
///   refuse chain, which lets packets not addressed to this host (forwarded traffic) go.
/// - `GUARD.refuse_v4` / `_v6` (regular): what a refusal does. Enforce: count, record the
///   source, protocol and port in the guard's record sets, then refuse. Audit: the same for new
///   flows only, in sets of its own, then return: nothing is refused. The record rules come before the refusal and
///   live in a chain of their own because a full dynamic set makes its rule stop (the packet
///   goes on to the next rule): it must never skip a refusal.
/// - `bans.refuse` (regular): refuses a banned peer whatever the allowlists say.
/// - `divert` (nat, prerouting, dstnat) and `shield` (filter, input), for relay and broker
///   guards: remote traffic for the guarded port goes to the listen port, which refuses
///   anything that did not come through that redirect.
enum FenceChains {
    /// A chain of the table: its name, its `type … hook … priority …` clause (nil for a regular
    /// chain, reached only by `jump`) and its rules.
    struct Chain: Equatable {
        let name: String
        let hook: String?
        let rules: [String]
    }

    /// The chains `policy` needs, regular chains first so that every jump finds its target.
    static func chains(_ policy: Policy) -> [Chain] {
        var out = [bansChain(policy.firewall.deny)]
        for item in policy.guards {
            out.append(refuseChain(item, family: .v4, deny: policy.firewall.deny))
            out.append(refuseChain(item, family: .v6, deny: policy.firewall.deny))
        }
        out.append(fenceChain(policy))
        let diverted = policy.guards.filter { $0.listenPort != nil || $0.discovers }
        if !diverted.isEmpty {
            out.append(divertChain(diverted))
            out.append(shieldChain(diverted))
        }
        return out
    }

    private static func refusal(_ deny: DenyAction, tcpOnly: Bool) -> [String] {
        switch deny {
        case .drop: return ["drop"]
        case .reject: return tcpOnly ? ["reject with tcp reset"] : ["meta l4proto tcp reject with tcp reset", "reject"]
        }
    }

    private static func bansChain(_ deny: DenyAction) -> Chain {
        Chain(name: NameScheme.bansChain, hook: nil, rules: ["counter name \"\(NameScheme.bansCounter)\""] + refusal(deny, tcpOnly: false))
    }

    private static func refuseChain(_ item: Guard, family: NameScheme.Family, deny: DenyAction) -> Chain {
        let key = "\(family.saddr) . meta l4proto . th dport"
        let record = [
            "update @\(NameScheme.seenSet(item.name, family, item.mode)) { \(key) }",
            "add @\(NameScheme.firstSet(item.name, family, item.mode)) { \(key) }",
        ]
        var rules: [String]
        switch item.mode {
        case .enforce:
            rules = ["counter name \"\(NameScheme.refusedCounter(item.name))\""] + record
                + refusal(deny, tcpOnly: item.kind != .host)
        case .audit:
            // One record per flow: every packet of an audited flow passes this chain.
            rules = ["ct state != new return", "counter name \"\(NameScheme.auditedCounter(item.name))\""] + record
        }
        // Checked here, once a source is outside the allowlist, so that allowed traffic never pays
        // for the route lookup: forwarded packets are not this host's to fence.
        if item.kind == .host {
            rules.insert("fib daddr type != { local, broadcast, multicast } return comment \"not for this host\"", at: 0)
        }
        return Chain(name: NameScheme.refuseChain(item.name, family), hook: nil, rules: rules)
    }

    private static func fenceChain(_ policy: Policy) -> Chain {
        let host = policy.hostGuard
        let named = policy.guards.filter { $0.kind != .host }
        var rules = ["iif \"lo\" accept"]
        let namedPorts = named.flatMap(\.ports)
        let discovering = named.filter(\.discovers)
        if host != nil {
            rules.append("tcp flags rst accept")
        } else {
            if !namedPorts.isEmpty { rules.append("tcp dport \(portMatch(namedPorts)) tcp flags rst accept") }
            for item in discovering {
                rules.append("tcp dport @\(NameScheme.discoveredPortsSet(item.name)) tcp flags rst accept comment \"\(item.name)\"")
            }
        }
        for family in NameScheme.Family.allCases {
            rules.append(
                "meta nfproto \(family.nfproto) \(family.saddr) @\(NameScheme.bansSet(family)) jump \(NameScheme.bansChain)")
        }
        for item in named {
            // A discover guard's ports are those in its run-time set; the same allowlist applies.
            let ports = item.discovers ? "@\(NameScheme.discoveredPortsSet(item.name))" : portMatch(item.ports)
            if NameScheme.hasStrikeBans(item) {
                rules += strikeBanRules(item, ports: ports, deny: policy.firewall.deny)
            }
            for family in NameScheme.Family.allCases {
                rules.append(
                    "meta nfproto \(family.nfproto) tcp dport \(ports) \(family.saddr) != @\(NameScheme.allowSet(item.name, family)) "
                        + "jump \(NameScheme.refuseChain(item.name, family)) comment \"\(item.name)\"")
            }
            if item.discovers {
                // Allowed peers of a port still being classified wait: a dropped SYN is retried.
                rules.append("tcp dport @\(NameScheme.holdSet(item.name)) ct state new drop comment \"\(item.name)\"")
            }
        }
        guard let host, case .host(let settings) = host.settings else {
            return Chain(name: "fence", hook: "type filter hook prerouting priority -150", rules: rules)
        }
        if !namedPorts.isEmpty {
            rules.append("tcp dport \(portMatch(namedPorts)) accept comment \"named guards decide their ports\"")
        }
        for item in discovering {
            rules.append("tcp dport @\(NameScheme.discoveredPortsSet(item.name)) accept comment \"\(item.name) decides its ports\"")
        }
        rules.append("ct direction reply accept comment \"replies to connections this host opened\"")
        rules.append("meta l4proto != { tcp, udp } accept")
        if !settings.publicPorts.isEmpty {
            rules.append("th dport \(portMatch(settings.publicPorts.sorted())) accept comment \"public\"")
        }
        for family in NameScheme.Family.allCases {
            rules.append(
                "meta nfproto \(family.nfproto) \(family.saddr) != @\(NameScheme.allowSet(host.name, family)) "
                    + "jump \(NameScheme.refuseChain(host.name, family)) comment \"\(host.name)\"")
        }
        return Chain(name: "fence", hook: "type filter hook prerouting priority -150", rules: rules)
    }

    /// A relay or broker guard's strike bans: new connections (`ct state new`) from a banned
    /// peer to the guard's ports are refused here, before the redirect, so proxyd never
    /// accepts them; the peer's established connections pass on to the allowlist check.
    private static func strikeBanRules(_ item: Guard, ports: String, deny: DenyAction) -> [String] {
        NameScheme.Family.allCases.map { family in
            "meta nfproto \(family.nfproto) tcp dport \(ports) \(family.saddr) @\(NameScheme.strikeBanSet(item.name, family)) "
                + "ct state new counter name \"\(NameScheme.strikeBannedCounter(item.name))\" "
                + refusal(deny, tcpOnly: true).joined() + " comment \"\(item.name)\""
        }
    }

    /// `redirect` remote traffic for each guarded port to the guard's listen port; for a discover
    /// guard, each discovered port to its broker's, through the guard's map (a port in
    /// `GUARD.ports` but not yet in the map matches nothing and passes on).
    private static func divertChain(_ guards: [Guard]) -> Chain {
        listenChain("divert", "type nat hook prerouting priority dstnat", guards) { item in
            if item.discovers {
                return "iif != \"lo\" tcp dport @\(NameScheme.discoveredPortsSet(item.name)) "
                    + "redirect to :tcp dport map @\(NameScheme.divertMap(item.name))"
            }
            return item.listenPort.map { "iif != \"lo\" tcp dport \(portMatch(item.ports)) redirect to :\($0)" }
        }
    }

    /// Refuse each listen port to anything that did not arrive through the redirect.
    private static func shieldChain(_ guards: [Guard]) -> Chain {
        listenChain("shield", "type filter hook input priority filter", guards) { item in
            let listen = item.discovers ? "@\(NameScheme.listenSet(item.name))" : item.listenPort.map { "\($0)" }
            return listen.map { "tcp dport \($0) ct status ! dnat reject with tcp reset" }
        }
    }

    /// A base chain with one rule, commented with its guard's name, per guard `rule` gives one for.
    private static func listenChain(_ name: String, _ hook: String, _ guards: [Guard], rule: (Guard) -> String?) -> Chain {
        Chain(name: name, hook: hook, rules: guards.compactMap { item in rule(item).map { "\($0) comment \"\(item.name)\"" } })
    }

    static func portMatch(_ ports: [UInt16]) -> String {
        ports.count == 1 ? "\(ports[0])" : "{ " + ports.map(String.init).joined(separator: ", ") + " }"
    }
}
