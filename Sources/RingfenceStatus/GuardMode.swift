/// Whether a guard refuses what its allowlist does not admit (`enforce`) or only records it
/// (`audit`), as status reports it.
public enum GuardMode: String, Codable, Hashable, Sendable, CaseIterable {
    case enforce
    case audit
}
