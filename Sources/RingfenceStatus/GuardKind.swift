/// What protects a guard's port, as status reports it; the raw values are the policy's `kind`.
public enum GuardKind: String, Codable, Hashable, Sendable, CaseIterable {
    /// The kernel fence only.
    case firewall
    /// The kernel fence plus the transparent TCP relay.
    case tcp
    /// The kernel fence plus the ZMTP broker.
    case zmqXPUB = "zmq-xpub"
    /// The kernel fence on every other port of the host.
    case host
}
