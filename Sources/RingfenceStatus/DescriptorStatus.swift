/// The daemon's open descriptors against its limit (RLIMIT_NOFILE), for `proxyctl status`: a
/// relayed connection holds two, up to six while bytes move (docs/relay-sizing.md), and a guard
/// out of descriptors refuses connections.
public struct DescriptorStatus: Codable, Hashable, Sendable {
    public var open: Int
    public var limit: Int

    public init(open: Int, limit: Int) {
        self.open = open
        self.limit = limit
    }

    /// Four in five descriptors are in use: time to raise the limit (LimitNOFILE) or lower
    /// `max_connections`.
    public var isShort: Bool { open * 5 >= limit * 4 }
}
