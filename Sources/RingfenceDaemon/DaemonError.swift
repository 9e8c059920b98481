import RingfenceFirewall
import RingfencePolicy

/// Why the daemon refused a policy. On a reload, the policy and fence in force stay.
public enum DaemonError: Error, Sendable, CustomStringConvertible {
    /// The file does not parse or validate; every problem is listed.
    case policy(PolicyError)
    /// nftables refused the rules.
    case firewall(FirewallError)
    /// A relay or broker could not start (its port is taken, its upstream does not resolve).
    case guardFailed(String)
    /// The control socket or the metrics endpoint could not be opened.
    case controlPlane(String)

    public var description: String {
        switch self {
        case .policy(let error): return error.description
        case .firewall(let error): return error.description
        case .guardFailed(let reason): return reason
        case .controlPlane(let reason): return reason
        }
    }
}
