import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import SystemPackage

/// A running `kind = "zmq-xpub"` guard: the shared front end (listeners, admission, the
/// redirect check, timers) and the broker between the admitted subscribers and the engine's
/// XPUB — reached at the first subscriber's original destination (SO_ORIGINAL_DST, after the
/// kernel's redirect) or at the fixed `upstream`, which is connected at start.
///
/// Everything of one guard runs on one loop: accepting, every subscriber, the upstream link and
/// the fan-out.
public final class BrokerGuard: Guard, @unchecked Sendable {
    /// The settings as last started or updated. Only changed on the daemon's queue.
    public private(set) var brokerSettings: BrokerGuardSettings
    private let frontEnd: GuardFrontEnd<BrokerSessions>

    /// - Parameter originalDestination: see `GuardFrontEnd.init`; tests only.
    /// - Throws: `GuardError.unresolvable` when the fixed upstream cannot be resolved.
    public init(
        _ settings: BrokerGuardSettings, logger: Logger,
        originalDestination: @escaping OriginalDestination = kernelOriginalDestination
    ) throws(GuardError) {
        brokerSettings = settings
        frontEnd = try GuardFrontEnd(
            settings.frontEnd, logger: logger, originalDestination: originalDestination
        ) { admission in
            BrokerSessions(settings, admission: admission, logger: logger)
        }
    }

    public var settings: any GuardConfiguration { brokerSettings }

    public var listenPort: UInt16 { frontEnd.listenPort }

    public var admission: Admission? { frontEnd.admission }

    /// Binds the listen port on all IPv4 and IPv6 addresses and starts accepting; with a fixed
    /// `upstream`, connects to it at once.
    /// - Throws: `GuardError.listen` when the port cannot be bound.
    public func start() throws(GuardError) {
        try frontEnd.start()
    }

    /// Stops accepting and closes every subscriber and the upstream link. Returns at once.
    public func stop() {
        frontEnd.stop()
    }

    public func canUpdate(to next: any GuardConfiguration) -> Bool {
        guard let next = next as? BrokerGuardSettings else { return false }
        return next.frontEnd.canBeUpdatedInPlace(from: brokerSettings.frontEnd)
    }

    /// Swaps the allowlist and limits in place and closes the subscribers the allowlist no
    /// longer admits; every other subscriber, and the upstream link, carry on. New high-water
    /// marks apply to queued messages at once. On the daemon's queue; returns once done.
    /// - Returns: the subscribers closed.
    public func update(to next: any GuardConfiguration) -> [ReloadReport.Cut] {
        precondition(canUpdate(to: next))
        guard let next = next as? BrokerGuardSettings else { return [] }
        brokerSettings = next
        frontEnd.sessions.update(limits: next.broker)
        return frontEnd.update(to: next.frontEnd)
    }

    /// Closes the subscribers of peers in `block` (`proxyctl kick`). Returns once done.
    public func kick(_ block: AddressSet) -> [ReloadReport.Cut] {
        frontEnd.kick(block)
    }

    /// The guard's status and its subscribers, taken on its loop. Returns once done.
    public func snapshot() -> GuardSnapshot {
        frontEnd.snapshot()
    }
}
