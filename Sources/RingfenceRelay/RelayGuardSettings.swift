import RingfenceGuard

/// Everything a relay guard runs from: the front end's settings and the relay's own limits.
public struct RelayGuardSettings: GuardConfiguration, Hashable {
    public var frontEnd: FrontEndSettings
    public var relay: RelayLimits

    public init(frontEnd: FrontEndSettings, relay: RelayLimits) {
        self.frontEnd = frontEnd
        self.relay = relay
    }

    /// Whether a relay started from `old` can take these settings on in place: the front end's
    /// rule (same name, ports and upstream) and the same protocol.
    public func canBeUpdatedInPlace(from old: RelayGuardSettings) -> Bool {
        frontEnd.canBeUpdatedInPlace(from: old.frontEnd) && relay.appProtocol == old.relay.appProtocol
    }
}
