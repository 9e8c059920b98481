import RingfenceAddresses

/// What one resolution of a name gave: its addresses (never empty) with how long they may be
/// trusted, or why there are none.
public enum NameLookup: Hashable, Sendable {
    /// The addresses, and the records' smallest TTL when the DNS answer could be read (a name
    /// from /etc/hosts has none).
    case addresses(Set<IPAddress>, ttl: Duration?)
    /// The resolver's reason (getaddrinfo's message: "Name or service not known",
    /// "Temporary failure in name resolution").
    case failed(String)
}
