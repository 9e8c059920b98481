/// When a `tcp` or `zmq-xpub` guard has the kernel refuse a peer's new connections: after
/// `banAfter` strikes (refusals at accept other than `not-allowed`, protocol violations,
/// handshake and partial-command timeouts, evictions) within `banWindow`, for `banFor`.
/// A reconnect storm of a refused peer then costs proxyd nothing; the peer's established
/// connections carry on. Every default here is documented in docs/policy.md.
public struct StrikeSettings: Hashable, Sendable {
    /// Strikes that ban; 0 turns banning off.
    public var banAfter = 20
    public var banWindow = Duration.seconds(10)
    /// Bounded like `proxyctl kick --ban` (`BanDuration`).
    public var banFor = Duration.seconds(60)

    /// The longest `ban_window`: strikes further apart than this are not a storm.
    public static let maxWindow = Duration.seconds(3600)

    public init() {}
}
