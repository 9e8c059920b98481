import Logging
import RingfenceBroker
import RingfenceGuard
import RingfenceIO
import RingfenceRelay

/// Makes a guard, not yet started, from its typed settings. The daemon's makes relays and
/// brokers; the reload orchestration's tests make fakes.
protocol GuardFactory {
    func makeGuard(_ settings: any GuardConfiguration) throws(GuardError) -> any Guard
}

/// The daemon's guards: relays on the shared loop group, brokers each on a loop of its own.
struct LiveGuardFactory: GuardFactory {
    let group: EventLoopGroup
    let logger: Logger

    func makeGuard(_ settings: any GuardConfiguration) throws(GuardError) -> any Guard {
        switch settings {
        case let relay as RelayGuardSettings:
            return try RelayGuard(relay, group: group, logger: logger)
        case let broker as BrokerGuardSettings:
            return try BrokerGuard(broker, logger: logger)
        default:
            preconditionFailure("no guard kind takes \(type(of: settings))")
        }
    }
}
