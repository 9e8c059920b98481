/// One source a guard's fence refused (enforce) or would have refused (audit), as
/// `proxyctl audit` lists it, busiest first.
public struct AuditEntry: Codable, Hashable, Sendable {
    public var guardName: String
    /// The guard's mode when it saw them: `audit` (they passed) or `enforce` (they were refused).
    public var mode: String
    public var source: String
    /// `tcp` or `udp`.
    public var `protocol`: String
    public var port: UInt16
    /// Enforce: packets refused. Audit: flows that would have been refused.
    public var count: UInt64
    /// UTC, RFC 3339, to the second.
    public var firstSeen: String
    public var lastSeen: String

    public init(
        guardName: String, mode: String, source: String, protocol: String, port: UInt16, count: UInt64,
        firstSeen: String, lastSeen: String
    ) {
        self.guardName = guardName
        self.mode = mode
        self.source = source
        self.protocol = `protocol`
        self.port = port
        self.count = count
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case mode, source, `protocol`, port, count, firstSeen, lastSeen
    }
}
