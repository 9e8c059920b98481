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
