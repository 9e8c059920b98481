/// Discovery's part of `proxyctl status`: how listeners are noticed, and what was found.
public struct DiscoveryStatus: Codable, Hashable, Sendable {
    /// `tracepoint` (the kernel tells within a millisecond) or `polling` (sock_diag every
    /// `pollIntervalMs`: a reader can connect before the redirect).
    public var method: String
    /// Why the tracepoint is not in use, when it is not.
    public var fallbackReason: String?
    public var pollIntervalMs: Double?
    /// Discover guards' candidates: XPUBs brokered now, and listeners classified as something else.
    public var brokered: Int
    public var otherListeners: Int
    /// Direct connections to brokered XPUBs (readers that connected before the redirect).
    public var directConnections: Int
    /// Since start: XPUBs brokered, and listeners probed.
    public var discovered: UInt64
    public var probed: UInt64

    public init(
        method: String, fallbackReason: String?, pollIntervalMs: Double?, brokered: Int, otherListeners: Int,
        directConnections: Int, discovered: UInt64, probed: UInt64
    ) {
        self.method = method
        self.fallbackReason = fallbackReason
        self.pollIntervalMs = pollIntervalMs
        self.brokered = brokered
        self.otherListeners = otherListeners
        self.directConnections = directConnections
        self.discovered = discovered
        self.probed = probed
    }
}
