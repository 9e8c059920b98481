import RingfenceAddresses

/// A validated policy: what to fence, for whom, and with which limits.
///
/// Only `Policy.parse(_:file:)` and `Policy.load(path:)` make one, so a `Policy` value is always
/// consistent: groups resolved, ports unique, limits in range.
public struct Policy: Hashable, Sendable {
    /// The file the policy came from, for messages.
    public var source: String
    public var firewall: FirewallSettings
    public var daemon: DaemonSettings
    /// Named peer groups, resolved to address sets (`[peers]`).
    public var peerGroups: [String: AddressSet]
    public var guards: [Guard]
    /// What the policy allows but probably does not mean, each with its position
    /// (`proxyctl check` prints them; they never refuse a policy).
    public var warnings: [PolicyDiagnostic] = []

    /// The `kind = "host"` guard, if the policy has one (at most one).
    public var hostGuard: Guard? { guards.first { $0.kind == .host } }
    /// Every DNS name the guards admit (`dns:NAME`, `lws:group`), sorted, each once.
    public var peerNames: [PeerName] { Set(guards.flatMap(\.allowNames)).sorted() }

    /// This policy with each guard's names replaced by what they resolve to in `addresses`,
    /// added to the guard's own addresses; a name missing from `addresses` adds nothing (fail
    /// closed). What proxyd applies: the kernel sets and the proxies' allowlists.
    public func resolvingNames(_ addresses: [PeerName: AddressSet]) -> Policy {
        var resolved = self
        for index in resolved.guards.indices {
            let names = resolved.guards[index].allowNames
            resolved.guards[index].allow = names.reduce(resolved.guards[index].allow) { $0.union(addresses[$1] ?? AddressSet()) }
        }
        return resolved
    }

    /// The guard that names TCP `port` itself (a firewall, relay or broker guard; not the host
    /// guard, which covers every port it does not).
    public func guardNaming(port: UInt16) -> Guard? { guards.first { $0.kind != .host && $0.ports.contains(port) } }
}

/// `[firewall]`: the nftables table that Ringfence owns.
public struct FirewallSettings: Hashable, Sendable {
    /// The `inet` table's name. Ringfence makes this table whole at start, changes it in place on
    /// reloads, and never touches another.
    public var table = "ringfence"
    /// `false`: render the rules (for `proxyctl nft`) but never load them into the kernel.
    public var apply = true
    /// What happens to a packet from a peer outside the allowlist.
    public var deny = DenyAction.reject
    /// Whether `proxyd` deletes its table on SIGTERM. Off by default: a stopped daemon leaves the
    /// fence standing (fail closed).
    public var removeOnExit = false

    public init() {}
}

/// How the kernel fence refuses a packet from a peer that is not allowed.
public enum DenyAction: String, Hashable, Sendable, CaseIterable {
    /// A TCP reset: the peer sees "connection refused" at once.
    case reject
    /// Silence: the peer's connection attempt times out.
    case drop
}

/// `[daemon]`: settings of the running `proxyd`.
public struct DaemonSettings: Hashable, Sendable {
    /// The control socket `proxyctl` talks to.
    public var controlSocket = "/run/ringfence/control.sock"
    /// Where `/metrics` is served (Prometheus text format); nil, the default, serves none.
    public var metricsListen: Endpoint?
    /// How discovery notices new listeners (docs/discovery.md): `auto` uses the kernel's
    /// tracepoint where proxyd may (within a millisecond of listen(2)) and polls otherwise;
    /// `polling` always polls.
    public var listenerWatch = ListenerWatchMode.auto
    /// How often discovery lists the listeners when it polls.
    public var listenerPollInterval = Duration.milliseconds(10)
    /// Whether `proxyd` follows its policy file (inotify on the file's directory and its
    /// resolved target's), reloading once per change as SIGHUP would. Off by default.
    public var watch = false
    /// How often proxyd resolves the policy's DNS names again (`dns:NAME`, `lws:group`); a
    /// name's record TTL, when shorter, is used instead (at least a second).
    public var dnsRefresh = Duration.seconds(10)

    /// The values of `listener_watch`.
    public enum ListenerWatchMode: String, Hashable, Sendable, CaseIterable {
        case auto
        case polling
    }

    public init() {}
}
