/// One peer name of the policy (`dns:NAME`, or a pod of `lws:group`) as proxyd resolves it, for
/// `proxyctl status`: the addresses in force and whether they are current.
public struct PeerNameStatus: Codable, Hashable, Sendable {
    /// `resolving` (first lookup under way: admits nobody), `resolved`, `stale` (the last lookup
    /// failed; the last addresses stay in force), `unresolved` (never resolved: admits nobody).
    public var name: String
    public var state: String
    public var addresses: [String]
    /// The last lookup's failure, while stale or unresolved.
    public var error: String?
    /// Seconds since the addresses in force were last confirmed; nil before the first.
    public var confirmedSecondsAgo: Double?
    public var failures: UInt64
    public var changes: UInt64
    /// The guards whose `allow` names it.
    public var guards: [String]

    public init(
        name: String, state: String, addresses: [String], error: String? = nil, confirmedSecondsAgo: Double? = nil,
        failures: UInt64 = 0, changes: UInt64 = 0, guards: [String] = []
    ) {
        self.name = name
        self.state = state
        self.addresses = addresses
        self.error = error
        self.confirmedSecondsAgo = confirmedSecondsAgo
        self.failures = failures
        self.changes = changes
        self.guards = guards
    }

    /// Whether it admits nobody now (never resolved).
    public var admitsNobody: Bool { addresses.isEmpty }
}
