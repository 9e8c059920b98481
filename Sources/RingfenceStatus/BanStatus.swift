/// A peer the kernel refuses on every port until its ban lapses (`proxyctl bans`).
public struct BanStatus: Codable, Hashable, Sendable {
    /// The banned address or block.
    public var peer: String
    public var expiresInSeconds: Double

    public init(peer: String, expiresInSeconds: Double) {
        self.peer = peer
        self.expiresInSeconds = expiresInSeconds
    }
}
