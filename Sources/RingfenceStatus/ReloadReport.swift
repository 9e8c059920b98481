/// What a reload did, or with `dry_run` would do: the guards added, removed, restarted and
/// updated in place, the nftables rules that change, and the live connections cut.
public struct ReloadReport: Codable, Hashable, Sendable {
    /// A connection a reload closes, and why.
    public struct Cut: Codable, Hashable, Sendable {
        public var guardName: String
        public var id: UInt64
        public var peer: String
        public var port: UInt16
        public var reason: CutReason

        public init(guardName: String, id: UInt64, peer: String, port: UInt16, reason: CutReason) {
            self.guardName = guardName
            self.id = id
            self.peer = peer
            self.port = port
            self.reason = reason
        }

        public init(_ connection: ConnectionStatus, reason: CutReason) {
            self.init(
                guardName: connection.guardName, id: connection.id, peer: connection.peer, port: connection.port,
                reason: reason)
        }

        private enum CodingKeys: String, CodingKey {
            case guardName = "guard"
            case id, peer, port, reason
        }
    }

    /// The nftables script's lines that the reload removes and adds (`proxyctl nft` of the old
    /// and the new policy, compared line by line).
    public struct RuleChanges: Codable, Hashable, Sendable {
        public var removed: [String]
        public var added: [String]

        public init(removed: [String], added: [String]) {
            self.removed = removed
            self.added = added
        }
    }

    public var dryRun: Bool
    /// The policy file read.
    public var policy: String
    public var added: [String]
    public var removed: [String]
    /// Guards stopped and started again (their connections are cut).
    public var restarted: [String]
    /// Guards that take the new allowlist or limits in place, their connections kept.
    public var updated: [String]
    public var rules: RuleChanges
    public var cut: [Cut]
    /// Wall time the reload took, parse to last guard updated.
    public var durationMs: Double

    public init(
        dryRun: Bool, policy: String, added: [String], removed: [String], restarted: [String], updated: [String],
        rules: RuleChanges, cut: [Cut], durationMs: Double
    ) {
        self.dryRun = dryRun
        self.policy = policy
        self.added = added
        self.removed = removed
        self.restarted = restarted
        self.updated = updated
        self.rules = rules
        self.cut = cut
        self.durationMs = durationMs
    }
}
