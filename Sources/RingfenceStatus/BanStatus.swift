/// A peer the kernel refuses until its ban lapses (`proxyctl bans`): on every port (`proxyctl
/// kick --ban`, no guard), or new connections to one guard's port after too many strikes
/// there (`guardName`, `ban_after`).
public struct BanStatus: Codable, Hashable, Sendable {
    /// The banned address or block.
    public var peer: String
    public var expiresInSeconds: Double
    /// The guard whose strikes banned the peer; nil for a host-wide ban (`kick --ban`).
    public var guardName: String?

    public init(peer: String, expiresInSeconds: Double, guardName: String? = nil) {
        self.peer = peer
        self.expiresInSeconds = expiresInSeconds
        self.guardName = guardName
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case peer, expiresInSeconds
    }
}
