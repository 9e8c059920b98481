import RingfenceAddresses
import RingfenceAdmission
import RingfenceStatus

/// What every running guard's front end needs, whatever its kind: its name and ports, who it
/// lets in (allowlist, mode, caps, rate) and where its connections go. The daemon maps a policy
/// guard to these; discovery can make them with no policy at all.
public struct FrontEndSettings: Hashable, Sendable {
    public var name: String
    public var kind: GuardKind
    /// The guarded port, which the kernel redirects to `listenPort`.
    public var port: UInt16
    /// The guard's own port, reachable only through the redirect.
    public var listenPort: UInt16
    /// The peers allowed in (the same set the kernel fence loads).
    public var allow: AddressSet
    /// Audit mode: a peer outside `allow` is admitted (caps and rates still apply).
    public var mode: GuardMode
    public var limits: Admission.Limits
    /// Where connections go; nil means each connection's original destination.
    public var upstream: HostPort?

    public init(
        name: String, kind: GuardKind, port: UInt16, listenPort: UInt16, allow: AddressSet, mode: GuardMode = .enforce,
        limits: Admission.Limits, upstream: HostPort? = nil
    ) {
        self.name = name
        self.kind = kind
        self.port = port
        self.listenPort = listenPort
        self.allow = allow
        self.mode = mode
        self.limits = limits
        self.upstream = upstream
    }

    /// Whether these settings let `address` in: it is allowed, or the guard only audits.
    public func admits(_ address: IPAddress) -> Bool {
        mode == .audit || allow.contains(address)
    }

    /// The one rule for which live connections a change to these settings cuts: those of peers
    /// they no longer admit. A reload (`Guard.update`) and its dry run (`Guard.wouldCut`) both
    /// ask this, so the dry run lists exactly what the reload closes.
    public func cuts(_ peer: IPAddress) -> Bool {
        !admits(peer)
    }

    /// Whether a running front end made from `old` can take these settings on in place: the
    /// same name, kind, ports and upstream. The allowlist, mode and limits may differ.
    public func canBeUpdatedInPlace(from old: FrontEndSettings) -> Bool {
        name == old.name && kind == old.kind && port == old.port && listenPort == old.listenPort
            && upstream == old.upstream
    }
}
