/// One request on the control socket: a JSON object on one line (or up to the end of input).
///
/// ```json
/// {"version": 1, "command": "status"}
/// {"version": 1, "command": "peers"}
/// {"version": 1, "command": "reload", "dry_run": true, "policy": "/etc/ringfence/policy.toml"}
/// {"version": 1, "command": "explain", "address": "10.0.0.9", "port": 5000, "transport": "udp"}
/// {"version": 1, "command": "kick", "peer": "10.0.0.9", "guard": "host", "ban": "10m"}
/// {"version": 1, "command": "unban", "peer": "10.0.0.9"}
/// ```
public struct ControlRequest: Codable, Hashable, Sendable {
    /// The protocol version this build speaks; a request for another is refused with
    /// `unsupported-version`.
    public static let currentVersion = 1

    public enum Command: String, Codable, Hashable, Sendable, CaseIterable {
        /// The daemon and every guard (`DaemonStatus`).
        case status
        /// Every live connection (`[ConnectionStatus]`).
        case peers
        /// Read a policy and apply it (`ReloadReport`), or with `dry_run` only say what would change.
        case reload
        /// What the fence refused, or in audit mode would have (`[AuditEntry]`).
        case audit
        /// Which guard and rule decide `address` → `port` (`Explanation`).
        case explain
        /// Close every live connection of `peer`, in every guard or in `guard`; with `ban`,
        /// refuse it in the kernel for that long (`KickReport`).
        case kick
        /// The bans in force (`[BanStatus]`).
        case bans
        /// Lift the ban of `peer`.
        case unban
        /// Every TCP listener of the host: class and coverage (`[ListenerStatus]`).
        case listeners
    }

    public var version: Int
    public var command: Command
    /// `reload` only: change nothing, report what a reload would do.
    public var dryRun: Bool?
    /// `reload` only: an absolute path to read instead of the daemon's policy file. A reload
    /// that applies makes it the daemon's policy file (SIGHUP reads it from then on).
    public var policy: String?
    /// `explain`: the source address, the port on this host, and `tcp` (default) or `udp`.
    public var address: String?
    public var port: UInt16?
    public var transport: String?
    /// `kick`, `unban`: an address or a CIDR block.
    public var peer: String?
    /// `kick`: only this guard.
    public var guardName: String?
    /// `kick`: ban for this long (`30s`, `10m`, `2h`, `1d`).
    public var ban: String?

    public init(
        command: Command, dryRun: Bool? = nil, policy: String? = nil, address: String? = nil, port: UInt16? = nil,
        transport: String? = nil, peer: String? = nil, guardName: String? = nil, ban: String? = nil,
        version: Int = Self.currentVersion
    ) {
        self.version = version
        self.command = command
        self.dryRun = dryRun
        self.policy = policy
        self.address = address
        self.port = port
        self.transport = transport
        self.peer = peer
        self.guardName = guardName
        self.ban = ban
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case version, command, dryRun, policy, address, port, transport, peer, ban
    }
}
