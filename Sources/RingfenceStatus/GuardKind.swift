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

/// Whether a guard refuses what its allowlist does not admit (`enforce`) or only records it
/// (`audit`), as status reports it.
public enum GuardMode: String, Codable, Hashable, Sendable, CaseIterable {
    case enforce
    case audit
}

/// Whether anything runs in proxyd for a guard.
public enum GuardState: String, Codable, Hashable, Sendable, CaseIterable {
    /// Listening.
    case running
    /// Its listeners are closed (stopped, or not started yet).
    case stopped
    /// A firewall or host guard: it lives in the kernel fence only.
    case kernel
}

/// A guard's upstream link, for people and for alerts.
public enum UpstreamState: String, Codable, Hashable, Sendable, CaseIterable {
    /// Broker: the handshake with the engine's XPUB completed.
    case connected
    /// Broker: connecting or handshaking.
    case connecting
    /// Broker: backing off after a failure.
    case waiting
    /// Broker: no upstream yet (it learns it from the first subscriber's original destination).
    case idle
    /// Broker: the link is closed for good (the guard stopped).
    case stopped
    /// Relay: one upstream connection per client.
    case perConnection = "per-connection"
    /// Firewall and host guards: nothing upstream.
    case none
}
