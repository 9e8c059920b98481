import RingfenceGuard

/// Everything a broker guard runs from: the front end's settings and the broker's own limits.
public struct BrokerGuardSettings: GuardConfiguration, Hashable {
    public var frontEnd: FrontEndSettings
    public var broker: BrokerLimits

    public init(frontEnd: FrontEndSettings, broker: BrokerLimits) {
        self.frontEnd = frontEnd
        self.broker = broker
    }
}
