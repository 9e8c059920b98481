import RingfenceSockets
import RingfenceStatus
import SystemPackage

/// Why a guard could not start; each says what to do. The daemon refuses the policy (or the
/// discovered guard); nothing else changes.
public enum GuardError: Error, CustomStringConvertible {
    /// The listen port could not be bound (in use, no permission).
    case listen(guardName: String, kind: GuardKind, SocketAddress, Errno)
    /// The fixed `upstream` does not resolve.
    case unresolvable(kind: GuardKind, String)

    public var description: String {
        switch self {
        case .listen(let name, _, let address, let error):
            return "guard '\(name)': cannot listen on \(address): \(error)"
                + (error == .addressInUse
                    ? ": another process (a second proxyd?) holds port \(address.port); stop it, or set listen_port to a free port"
                    : "")
        case .unresolvable(.zmqXPUB, let upstream):
            return "upstream '\(upstream)' does not resolve to an address; use an IP address or a name this host resolves"
        case .unresolvable(_, let upstream):
            return "upstream '\(upstream)' does not resolve"
        }
    }
}
