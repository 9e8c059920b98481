import RingfenceSockets
import SystemPackage

/// Why a relay guard could not start. The daemon refuses the policy; nothing else changes.
public enum RelayError: Error, CustomStringConvertible {
    case notARelay(String)
    case listen(String, SocketAddress, Errno)
    case unresolvable(String)

    public var description: String {
        switch self {
        case .notARelay(let name):
            return "guard '\(name)' is not a tcp guard"
        case .listen(let name, let address, let error):
            return "guard '\(name)': cannot listen on \(address): \(error)"
                + (error == .addressInUse
                    ? ": another process (a second proxyd?) holds port \(address.port); stop it, or set listen_port to a free port"
                    : "")
        case .unresolvable(let upstream):
            return "upstream '\(upstream)' does not resolve"
        }
    }
}
