/// What `proxyctl kick` did: the connections it closed, in each guard, and the ban it set.
public struct KickReport: Codable, Hashable, Sendable {
    /// The address or block kicked.
    public var peer: String
    /// The one guard asked for; nil for every guard.
    public var guardName: String?
    /// Relay connections and broker subscribers closed, with their ids.
    public var cut: [ReloadReport.Cut]
    /// The host guard's: TCP sockets of this host whose remote end is in `peer`, destroyed in
    /// the kernel (the peer's direct connections, such as gloo pairs); nil when the host guard
    /// was not kicked (none in the policy, or `--guard` named another).
    public var hostSocketsClosed: Int?
    public var ban: BanStatus?

    public init(peer: String, guardName: String?, cut: [ReloadReport.Cut], hostSocketsClosed: Int?, ban: BanStatus?) {
        self.peer = peer
        self.guardName = guardName
        self.cut = cut
        self.hostSocketsClosed = hostSocketsClosed
        self.ban = ban
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case peer, cut, hostSocketsClosed, ban
    }
}
