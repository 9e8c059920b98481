/// Whether anything runs in proxyd for a guard.
public enum GuardState: String, Codable, Hashable, Sendable, CaseIterable {
    /// Listening.
    case running
    /// Its listeners are closed (stopped, or not started yet).
    case stopped
    /// A firewall or host guard: it lives in the kernel fence only.
    case kernel
}
