/// The whole daemon, as `proxyctl status` shows it: the process, the policy in force, the
/// fence, the reloads so far, and every guard.
public struct DaemonStatus: Codable, Hashable, Sendable {
    public var pid: Int32
    public var policy: String
    public var uptimeSeconds: Double
    /// The nftables table, and whether proxyd loads it (`[firewall] apply`).
    public var table: String
    public var fenceApplied: Bool
    public var reloadsApplied: UInt64
    public var reloadsRefused: UInt64
    public var guards: [GuardStatus]
    /// Bans in force now; kicks and bans since start (`proxyctl kick`).
    public var bans: Int
    public var kicks: UInt64
    public var bansIssued: UInt64
    /// Discovery, when a discover guard is in the policy.
    public var discovery: DiscoveryStatus?
    /// Open descriptors against the limit; nil when they cannot be read.
    public var descriptors: DescriptorStatus?
    /// The policy's peer names and what they resolve to; nil when the policy has none.
    public var names: [PeerNameStatus]?

    public init(
        pid: Int32, policy: String, uptimeSeconds: Double, table: String, fenceApplied: Bool, reloadsApplied: UInt64,
        reloadsRefused: UInt64, guards: [GuardStatus], bans: Int = 0, kicks: UInt64 = 0, bansIssued: UInt64 = 0,
        discovery: DiscoveryStatus? = nil, descriptors: DescriptorStatus? = nil, names: [PeerNameStatus]? = nil
    ) {
        self.names = names
        self.descriptors = descriptors
        self.discovery = discovery
        self.bans = bans
        self.kicks = kicks
        self.bansIssued = bansIssued
        self.pid = pid
        self.policy = policy
        self.uptimeSeconds = uptimeSeconds
        self.table = table
        self.fenceApplied = fenceApplied
        self.reloadsApplied = reloadsApplied
        self.reloadsRefused = reloadsRefused
        self.guards = guards
    }
}
