import RingfenceAddresses
import RingfencePolicy

/// Which guard and which rule decide a connection from an address to a port of this host, and
/// why, worked out from the policy and the bans in the order `FenceChains` writes the rules
/// (`proxyctl explain`). Pure: the integration tests check it against what the kernel does.
public struct FenceVerdict: Hashable, Sendable {
    public enum Outcome: String, Hashable, Sendable {
        /// The fence lets it through.
        case allowed
        /// The fence refuses it.
        case refused
        /// It would be refused, but the deciding guard is in audit mode: it passes and is recorded.
        case audit
        /// No guard fences that port: nothing stops it.
        case open
    }

    public enum Transport: String, Hashable, Sendable, CaseIterable {
        case tcp, udp
    }

    public var outcome: Outcome
    /// The guard that decides; nil for loopback, bans and open ports.
    public var guardName: String?
    public var mode: Guard.Mode?
    /// One sentence for people: "allowed by guard host through @workers = 10.0.0.0/24".
    public var reason: String

    /// The verdict on `transport` traffic from `address` to `port`, under `policy` and `bans`.
    /// - Parameter discovered: the ports discover guards cover now (held or brokered), with the
    ///   guard's name: their rules come right after the named guards' (docs/nftables.md).
    public static func decide(
        _ address: IPAddress, port: UInt16, transport: Transport, policy: Policy, bans: [Ban] = [],
        discovered: [UInt16: String] = [:]
    ) -> FenceVerdict {
        if address.isLoopback {
            return FenceVerdict(outcome: .allowed, reason: "allowed: loopback, which the fence never applies to")
        }
        if let ban = bans.first(where: { $0.block.map { contains($0, address) } ?? false }) {
            return FenceVerdict(
                outcome: .refused, reason: "refused: banned, \(ban.peer) is refused on every port (\(ban.secondsLeft)s left)")
        }
        let named = policy.guardNaming(port: port)
        if transport == .tcp, let named {
            return judge(address, by: named, policy: policy, what: "\(named.kind.rawValue) port \(port)")
        }
        if transport == .tcp, let name = discovered[port], let discoverer = policy.guards.first(where: { $0.name == name }) {
            return judge(address, by: discoverer, policy: policy, what: "discovered XPUB port \(port)")
        }
        guard let host = policy.hostGuard, case .host(let settings) = host.settings else {
            let note = named.map { " (guard \($0.name) fences TCP only)" } ?? ""
            return FenceVerdict(outcome: .open, reason: "open: no guard fences \(transport.rawValue) port \(port)\(note)")
        }
        if settings.publicPorts.contains(port) {
            return FenceVerdict(outcome: .allowed, guardName: host.name, mode: host.mode, reason: "allowed: public port of guard \(host.name)")
        }
        return judge(address, by: host, policy: policy, what: "\(transport.rawValue) port \(port)")
    }

    private static func judge(_ address: IPAddress, by item: Guard, policy: Policy, what: String) -> FenceVerdict {
        if let entry = allowEntry(admitting: address, in: item, policy: policy) {
            return FenceVerdict(
                outcome: .allowed, guardName: item.name, mode: item.mode,
                reason: "allowed by guard \(item.name) through \(entry)")
        }
        switch item.mode {
        case .enforce:
            return FenceVerdict(
                outcome: .refused, guardName: item.name, mode: item.mode,
                reason: "refused: in no allowlist of guard \(item.name) (\(what))")
        case .audit:
            return FenceVerdict(
                outcome: .audit, guardName: item.name, mode: item.mode,
                reason: "audit: in no allowlist of guard \(item.name) (\(what)); would be refused, passes and is recorded")
        }
    }

    /// The first entry of the guard's `allow` that holds `address`, as people read it:
    /// `@workers = 10.0.0.0/24` (the group's interval that holds it) or `10.0.0.0/24`.
    static func allowEntry(admitting address: IPAddress, in item: Guard, policy: Policy) -> String? {
        guard item.allow.contains(address) else { return nil }
        for entry in item.allowEntries {
            if entry.hasPrefix("@") {
                if let set = policy.peerGroups[String(entry.dropFirst())], let element = set.element(containing: address) {
                    return "\(entry) = \(element)"
                }
            } else if let block = try? CIDR(parsing: entry), contains(block, address) {
                return entry
            }
        }
        return item.allow.element(containing: address)
    }

    private static func contains(_ block: CIDR, _ address: IPAddress) -> Bool {
        AddressSet([block]).contains(address)
    }

    init(outcome: Outcome, guardName: String? = nil, mode: Guard.Mode? = nil, reason: String) {
        self.outcome = outcome
        self.guardName = guardName
        self.mode = mode
        self.reason = reason
    }
}
