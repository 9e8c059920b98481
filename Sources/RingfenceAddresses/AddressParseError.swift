/// Why a string is not an address or address block, phrased for the person who wrote it.
public enum AddressParseError: Error, Hashable, Sendable, CustomStringConvertible {
    case empty
    case invalidAddress(String)
    case invalidPrefix(String)
    case prefixOutOfRange(Int, family: Int)
    case hostBitsSet(String, network: String, host: String)
    case zoneNotAllowed(String)

    public var description: String {
        switch self {
        case .empty:
            return "empty address"
        case .invalidAddress(let text):
            return "'\(text)' is not a valid IPv4 or IPv6 address"
        case .invalidPrefix(let text):
            return "'\(text)' is not a valid prefix length"
        case .prefixOutOfRange(let prefix, let family):
            return "prefix length \(prefix) is out of range for IPv\(family) (0-\(family == 4 ? 32 : 128))"
        case .hostBitsSet(let text, let network, let host):
            return "'\(text)' has host bits set; write '\(network)' for the network or '\(host)' for the host"
        case .zoneNotAllowed(let text):
            return "'\(text)' has a zone index; zones are not allowed in a policy"
        }
    }
}
