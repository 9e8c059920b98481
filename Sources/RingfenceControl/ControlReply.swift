import RingfenceStatus

/// The one reply to a control request: `ok` and the field for its command, or `ok: false` and
/// an `error`.
///
/// ```json
/// {"version": 1, "ok": true, "status": {...}}
/// {"version": 1, "ok": false, "error": {"code": "policy-refused", "message": "...", "details": ["policy.toml:3:9: guard[0].port: ..."]}}
/// ```
public struct ControlReply: Codable, Hashable, Sendable {
    public var version: Int
    public var ok: Bool
    public var status: DaemonStatus?
    public var peers: [ConnectionStatus]?
    public var reload: ReloadReport?
    public var audit: [AuditEntry]?
    public var explain: Explanation?
    public var kick: KickReport?
    public var bans: [BanStatus]?
    /// `unban`: the peer whose ban was lifted.
    public var unban: BanStatus?
    public var listeners: [ListenerStatus]?
    public var error: ControlError?

    public init(
        ok: Bool, status: DaemonStatus? = nil, peers: [ConnectionStatus]? = nil, reload: ReloadReport? = nil,
        audit: [AuditEntry]? = nil, explain: Explanation? = nil, kick: KickReport? = nil, bans: [BanStatus]? = nil,
        unban: BanStatus? = nil, listeners: [ListenerStatus]? = nil, error: ControlError? = nil
    ) {
        self.listeners = listeners
        version = ControlRequest.currentVersion
        self.ok = ok
        self.status = status
        self.peers = peers
        self.reload = reload
        self.audit = audit
        self.explain = explain
        self.kick = kick
        self.bans = bans
        self.unban = unban
        self.error = error
    }

    public static func failure(_ error: ControlError) -> ControlReply {
        ControlReply(ok: false, error: error)
    }
}
