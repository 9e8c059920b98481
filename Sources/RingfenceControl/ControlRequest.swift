/// One request on the control socket: a JSON object on one line (or up to the end of input).
///
/// ```json
/// {"version": 1, "command": "status"}
/// {"version": 1, "command": "peers"}
/// {"version": 1, "command": "reload", "dry_run": true, "policy": "/etc/ringfence/policy.toml"}
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
    }

    public var version: Int
    public var command: Command
    /// `reload` only: change nothing, report what a reload would do.
    public var dryRun: Bool?
    /// `reload` only: an absolute path to read instead of the daemon's policy file. A reload
    /// that applies makes it the daemon's policy file (SIGHUP reads it from then on).
    public var policy: String?

    public init(command: Command, dryRun: Bool? = nil, policy: String? = nil, version: Int = Self.currentVersion) {
        self.version = version
        self.command = command
        self.dryRun = dryRun
        self.policy = policy
    }
}
