import RingfencePolicy

/// The names of the sets, chains and counters in Ringfence's table, and their declarations.
///
/// A guard's allowlist sets are `GUARD_v4` and `GUARD_v6` (the names operators already know);
/// everything else carries a dot, which a guard name cannot contain, so no guard's name can
/// collide with another guard's sets or with the table's own (`bans.v4`).
public enum NameScheme {
    /// An address family of the `inet` table.
    public enum Family: String, CaseIterable, Sendable {
        case v4, v6

        var nfproto: String { self == .v4 ? "ipv4" : "ipv6" }
        var saddr: String { self == .v4 ? "ip saddr" : "ip6 saddr" }
        var addressType: String { self == .v4 ? "ipv4_addr" : "ipv6_addr" }
    }

    /// How long a record of a refused source stays after it was last seen, and how many a set
    /// holds at most: bounded memory whatever a scan sends. When a set is full, new sources go
    /// unrecorded; refusals never depend on it.
    public static let recordTimeout = "1d"
    public static let recordTimeoutSeconds = 86_400
    public static let recordCapacity = 16_384

    public static func allowSet(_ guardName: String, _ family: Family) -> String { "\(guardName)_\(family.rawValue)" }
    /// Source . protocol . port of what the guard refused (enforce) or would have refused
    /// (audit: a set of its own, so that a list read after the switch to enforce still says
    /// which passed), with a packet counter; `update` refreshes its timeout, so it tells when
    /// each was last seen.
    public static func seenSet(_ guardName: String, _ family: Family, _ mode: Guard.Mode) -> String {
        "\(guardName).\(mode == .audit ? "audit_" : "")seen_\(family.rawValue)"
    }
    /// The same keys, added once and never refreshed: it tells when each was first seen.
    public static func firstSet(_ guardName: String, _ family: Family, _ mode: Guard.Mode) -> String {
        "\(guardName).\(mode == .audit ? "audit_" : "")first_\(family.rawValue)"
    }
    static func refuseChain(_ guardName: String, _ family: Family) -> String { "\(guardName).refuse_\(family.rawValue)" }
    public static func refusedCounter(_ guardName: String) -> String { "\(guardName).refused" }
    public static func auditedCounter(_ guardName: String) -> String { "\(guardName).audited" }

    /// A discover guard's run-time sets, which proxyd fills as it discovers XPUBs (`DiscoveryChange`)
    /// and no policy names: the XPUB ports it covers now (fenced by its allowlist)...
    public static func discoveredPortsSet(_ guardName: String) -> String { "\(guardName).ports" }
    /// ...those still being classified (new connections from outside wait: their SYN is dropped)...
    public static func holdSet(_ guardName: String) -> String { "\(guardName).hold" }
    /// ...XPUB port → its broker's listen port, for the redirect...
    public static func divertMap(_ guardName: String) -> String { "\(guardName).divert" }
    /// ...and its brokers' listen ports, refused unless reached through the redirect.
    public static func listenSet(_ guardName: String) -> String { "\(guardName).listen" }

    /// Peers a relay or broker guard banned after too many strikes (`ban_after`): their new
    /// connections to the guard's ports are refused until the element's timeout; established
    /// ones carry on. Plain sets of addresses with per-element timeouts (no intervals: a strike
    /// names one peer), filled by proxyd over netlink (`StrikeBanChange`).
    public static func strikeBanSet(_ guardName: String, _ family: Family) -> String { "\(guardName).bans_\(family.rawValue)" }
    /// New connections refused by a guard's strike bans.
    public static func strikeBannedCounter(_ guardName: String) -> String { "\(guardName).banned" }
    /// At most this many peers banned per guard and family: a full set refuses the next ban
    /// (logged), never a connection of a peer it does not hold.
    public static let strikeBanCapacity = 16_384

    /// Whether `item` has strike-ban sets: relay and broker guards (discovered brokers use their
    /// discover guard's).
    public static func hasStrikeBans(_ item: Guard) -> Bool { item.kind == .tcp || item.kind == .zmqXPUB }

    /// Peers refused on every port until their ban's timeout (`proxyctl kick --ban`).
    public static func bansSet(_ family: Family) -> String { "bans.\(family.rawValue)" }
    static let bansChain = "bans.refuse"
    public static let bansCounter = "bans.refused"

    /// One set declaration: `name`, a `type …` and its flags and options, and its elements;
    /// `keyword` is `map` for a map.
    struct SetDeclaration {
        let name: String
        let body: String
        let elements: [String]
        var keyword = "set"
    }

    /// The sets one guard owns: its allowlist (with `elements` when asked), then its records.
    static func sets(of item: Guard, elements: Bool) -> [SetDeclaration] {
        Family.allCases.map { family in
            // Rendered only when asked: a reload that changes sets over netlink never needs them.
            let allow = !elements ? [] : family == .v4 ? item.allow.ipv4Elements : item.allow.ipv6Elements
            return SetDeclaration(
                name: allowSet(item.name, family), body: "type \(family.addressType); flags interval;",
                elements: allow)
        } + Guard.Mode.allCases.flatMap { mode in
            Family.allCases.flatMap { family in
                let key = "type \(family.addressType) . inet_proto . inet_service;"
                let options = "flags dynamic, timeout; timeout \(recordTimeout); size \(recordCapacity);"
                return [
                    SetDeclaration(name: seenSet(item.name, family, mode), body: "\(key) \(options) counter;", elements: []),
                    SetDeclaration(name: firstSet(item.name, family, mode), body: "\(key) \(options)", elements: []),
                ]
            }
        } + discoverySets(of: item) + strikeBanSets(of: item)
    }

    /// A relay or broker guard's strike-ban sets, declared empty: proxyd adds their elements at
    /// run time, and reloads that keep the table keep them (docs/nftables.md).
    static func strikeBanSets(of item: Guard) -> [SetDeclaration] {
        guard hasStrikeBans(item) else { return [] }
        return Family.allCases.map { family in
            SetDeclaration(
                name: strikeBanSet(item.name, family),
                body: "type \(family.addressType); flags timeout; size \(strikeBanCapacity);", elements: [])
        }
    }

    /// A discover guard's run-time sets, declared empty: the policy never names their elements,
    /// so rendering, `restructure` and `refill` never change them (docs/nftables.md).
    static func discoverySets(of item: Guard) -> [SetDeclaration] {
        guard item.discovers else { return [] }
        let port = "type inet_service;"
        return [
            SetDeclaration(name: discoveredPortsSet(item.name), body: port, elements: []),
            SetDeclaration(name: holdSet(item.name), body: port, elements: []),
            SetDeclaration(name: divertMap(item.name), body: "type inet_service : inet_service;", elements: [], keyword: "map"),
            SetDeclaration(name: listenSet(item.name), body: port, elements: []),
        ]
    }

    /// The table's own sets: the bans, one per family.
    static var tableSets: [SetDeclaration] {
        Family.allCases.map {
            SetDeclaration(name: bansSet($0), body: "type \($0.addressType); flags interval, timeout;", elements: [])
        }
    }

    /// The named counters one guard owns.
    static func counters(of item: Guard) -> [String] {
        [refusedCounter(item.name), auditedCounter(item.name)] + (hasStrikeBans(item) ? [strikeBannedCounter(item.name)] : [])
    }
}
