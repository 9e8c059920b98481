/// Why a guard counted a strike against a peer (`Admission.strike`): a refusal at admission, a
/// protocol violation, a handshake or partial-command timeout, or an eviction. Enough strikes
/// in a guard's `ban_window` and the kernel refuses the peer's new connections to that guard
/// for `ban_for`. The raw value is what the log says (`reason=` of "peer banned by guard").
public enum StrikeReason: String, Codable, Hashable, Sendable, CaseIterable {
    /// Refused at accept: the peer holds its cap (`max_connections_per_peer`, `max_subscribers_per_peer`).
    case peerLimit = "peer-limit"
    /// Refused at accept: the guard holds its cap (`max_connections`, `max_subscribers`).
    case totalLimit = "total-limit"
    /// Refused at accept: faster than `accept_rate_per_peer`.
    case rateLimit = "rate-limit"
    /// Closed for breaking the protocol (ZMTP, or the TCPStore gate).
    case protocolViolation = "protocol-violation"
    /// Closed for a handshake or a command that did not arrive in time.
    case timeout
    /// A broker subscriber closed because its queue was full (`on_overflow = "disconnect"`).
    case evicted

    /// The strike a refusal at admission counts; nil for `not-allowed`, which the kernel fence
    /// already refuses (in audit mode nothing is refused, so it never happens).
    public init?(_ denial: DenialReason) {
        switch denial {
        case .notAllowed: return nil
        case .peerLimit: self = .peerLimit
        case .totalLimit: self = .totalLimit
        case .rateLimit: self = .rateLimit
        }
    }
}
