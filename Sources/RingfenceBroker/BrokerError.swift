import RingfenceSockets
import SystemPackage

/// Why a broker guard could not start; each says what to do.
public enum BrokerError: Error, CustomStringConvertible {
    case notABroker(String)
    case listen(String, SocketAddress, Errno)
    case unresolvable(String)

    public var description: String {
        switch self {
        case .notABroker(let name):
            "guard '\(name)' is not a zmq-xpub guard"
        case .listen(let name, let address, let error):
            "guard '\(name)': cannot listen on \(address): \(error)"
                + (error == .addressInUse
                    ? ": another process (a second proxyd?) holds port \(address.port); stop it, or set listen_port to a free port"
                    : " (is listen_port in use by another process?)")
        case .unresolvable(let upstream):
            "upstream '\(upstream)' does not resolve to an address; use an IP address or a name this host resolves"
        }
    }
}
