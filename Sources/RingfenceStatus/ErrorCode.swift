/// The stable codes of a refused control request, for scripts; the raw value is on the wire.
public enum ErrorCode: String, Codable, Hashable, Sendable, CaseIterable {
    case badRequest = "bad-request"
    case unsupportedVersion = "unsupported-version"
    case tooLarge = "too-large"
    case timeout
    case notPermitted = "not-permitted"
    /// The policy file has errors.
    case policyRefused = "policy-refused"
    /// A guard could not start or nftables refused.
    case reloadRefused = "reload-refused"
    /// No such guard; no such ban.
    case notFound = "not-found"
    /// The block overlaps another ban.
    case banConflict = "ban-conflict"
    /// nftables could not be read or changed.
    case firewallError = "firewall-error"
    case `internal`
}
