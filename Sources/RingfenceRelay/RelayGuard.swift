import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import SystemPackage

/// A running `kind = "tcp"` guard: the shared front end (listeners, admission, the redirect
/// check, timers) and a relay session per admitted connection to the connection's original
/// destination (SO_ORIGINAL_DST, after the kernel's redirect) or to the fixed `upstream`.
/// Sessions are spread over the loop group.
public final class RelayGuard: Guard, @unchecked Sendable {
    /// The settings as last started or updated. Only changed on the daemon's queue.
    public private(set) var relaySettings: RelayGuardSettings
    private let frontEnd: GuardFrontEnd<RelaySessions>

    /// - Parameter originalDestination: see `GuardFrontEnd.init`; tests only.
    /// - Throws: `GuardError.unresolvable` when the fixed upstream cannot be resolved.
    public init(
        _ settings: RelayGuardSettings, group: EventLoopGroup, logger: Logger,
        originalDestination: @escaping OriginalDestination = kernelOriginalDestination
    ) throws(GuardError) {
        relaySettings = settings
        frontEnd = try GuardFrontEnd(
            settings.frontEnd, logger: logger, originalDestination: originalDestination
        ) { admission in
            RelaySessions(settings, admission: admission, group: group, logger: logger)
        }
    }

    public var settings: any GuardConfiguration { relaySettings }

    public var listenPort: UInt16 { frontEnd.listenPort }

    public var admission: Admission? { frontEnd.admission }

    /// Binds the listen port on all IPv4 and IPv6 addresses and starts accepting.
    /// - Throws: `GuardError.listen` when the port cannot be bound (in use, no permission).
    public func start() throws(GuardError) {
        try frontEnd.start()
    }

    /// Stops accepting and closes every live session (with a reset). Returns at once; the
    /// sessions close on their loops.
    public func stop() {
        frontEnd.stop()
    }

    public func canUpdate(to next: any GuardConfiguration) -> Bool {
        guard let next = next as? RelayGuardSettings else { return false }
        return next.canBeUpdatedInPlace(from: relaySettings)
    }

    /// Swaps the allowlist and limits in place and closes the live connections of peers the
    /// allowlist no longer admits (the kernel fence cuts them too); every other connection
    /// carries on. Caps and rates apply to the next accepts, timeouts at the next sweep, buffers,
    /// gate limits and `busy_poll` to new connections. On the daemon's queue; returns once done.
    /// - Returns: the connections closed.
    public func update(to next: any GuardConfiguration) -> [ReloadReport.Cut] {
        precondition(canUpdate(to: next))
        guard let next = next as? RelayGuardSettings else { return [] }
        relaySettings = next
        frontEnd.sessions.context.limits = next.relay
        return frontEnd.update(to: next.frontEnd)
    }

    /// Closes the live connections of peers in `block` (`proxyctl kick`). Returns once done.
    public func kick(_ block: AddressSet) -> [ReloadReport.Cut] {
        frontEnd.kick(block)
    }

    /// The guard's status and its connections, taken loop by loop. Returns once done.
    public func snapshot() -> GuardSnapshot {
        frontEnd.snapshot()
    }
}
