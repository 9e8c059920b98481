import Logging
import RingfenceAdmission
import RingfenceBroker
import RingfenceGuard
import RingfenceIO
import RingfenceRelay

/// Makes a guard, not yet started, from its typed settings. The daemon's makes relays and
/// brokers; the reload orchestration's tests make fakes.
protocol GuardFactory {
    func makeGuard(_ settings: any GuardConfiguration) throws(GuardError) -> any Guard
}

/// The daemon's guards: relays on the shared loop group, brokers each on a loop of its own;
/// each reports the peers its strikes ban to `strikes`.
struct LiveGuardFactory: GuardFactory {
    let group: EventLoopGroup
    let logger: Logger
    let strikes: StrikeInbox

    func makeGuard(_ settings: any GuardConfiguration) throws(GuardError) -> any Guard {
        let made: any Guard
        switch settings {
        case let relay as RelayGuardSettings:
            made = try RelayGuard(relay, group: group, logger: logger)
        case let broker as BrokerGuardSettings:
            made = try BrokerGuard(broker, logger: logger)
        default:
            preconditionFailure("no guard kind takes \(type(of: settings))")
        }
        let name = settings.frontEnd.name
        made.admission?.onBan = { [strikes] ban in strikes.post(guardName: name, ban) }
        return made
    }
}
