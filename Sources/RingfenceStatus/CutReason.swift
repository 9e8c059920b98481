/// Why a guard closed a live connection; the raw value is what the control protocol, the logs
/// and `proxyctl reload` print.
public enum CutReason: String, Codable, Hashable, Sendable, CaseIterable {
    /// The peer left the allowlist at a reload.
    case notAllowed = "not-allowed"
    /// `proxyctl kick` named the peer.
    case kicked
    /// A reload removed the guard.
    case guardRemoved = "guard-removed"
    /// A reload changed a key that cannot change in place (`port`, `listen_port`, `upstream`,
    /// `protocol`): the guard stopped and a new one started.
    case guardRestarted = "guard-restarted"
}
