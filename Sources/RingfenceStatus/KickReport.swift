/// What `proxyctl kick` did: the connections it closed, in each guard, and the ban it set.
public struct KickReport: Codable, Hashable, Sendable {
    /// The address or block kicked.
    public var peer: String
    /// The one guard asked for; nil for every guard.
    public var guardName: String?
    /// Relay connections and broker subscribers closed, with their ids.
    public var cut: [ReloadReport.Cut]
    /// TCP sockets of this host whose remote end is in `peer`, destroyed in the kernel: the
    /// peer's direct connections, which no relay or broker holds (gloo pairs, a firewall guard's
    /// port). With a host guard, all of them; otherwise those on the firewall guards' ports.
    /// nil when no kernel-only guard was kicked.
    public var socketsClosed: Int?
    public var ban: BanStatus?

    public init(peer: String, guardName: String?, cut: [ReloadReport.Cut], socketsClosed: Int?, ban: BanStatus?) {
        self.peer = peer
        self.guardName = guardName
        self.cut = cut
        self.socketsClosed = socketsClosed
        self.ban = ban
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case peer, cut, socketsClosed, ban
    }
}
