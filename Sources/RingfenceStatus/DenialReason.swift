/// Why a guard refused a connection at accept; the raw value is what the log says and the key
/// of `GuardCounters.denied` and of `/metrics`' `reason` label.
public enum DenialReason: String, Codable, Hashable, Sendable, CaseIterable {
    /// The allowlist does not hold the peer (enforce mode).
    case notAllowed = "not-allowed"
    /// The peer holds `max_connections_per_peer` (`max_subscribers_per_peer`) connections.
    case peerLimit = "peer-limit"
    /// The guard holds `max_connections` (`max_subscribers`) connections.
    case totalLimit = "total-limit"
    /// The peer opened connections faster than `accept_rate_per_peer`.
    case rateLimit = "rate-limit"
}
