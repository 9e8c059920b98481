import RingfenceAddresses
import RingfenceAdmission
import RingfenceStatus

/// A running guard that carries traffic (the relay or the broker), as the daemon starts it,
/// updates it in place, asks for its status, kicks peers off it and stops it. The daemon holds
/// every guard through this protocol.
public protocol Guard: AnyObject, Sendable {
    /// The settings last started or updated with.
    var settings: any GuardConfiguration { get }
    /// Binds the listen port and starts accepting.
    func start() throws(GuardError)
    /// Stops accepting and closes every connection. Returns at once.
    func stop()
    /// Whether `update(to:)` can take `next` on without replacing the guard.
    func canUpdate(to next: any GuardConfiguration) -> Bool
    /// Takes `next` on in place and closes the connections it cuts (`FrontEndSettings.cuts`);
    /// returns them. Blocks until done.
    func update(to next: any GuardConfiguration) -> [ReloadReport.Cut]
    /// Status and live connections, taken together. Blocks until taken.
    func snapshot() -> GuardSnapshot
    /// Closes the live connections of peers in `block`; returns them. Blocks until done.
    func kick(_ block: AddressSet) -> [ReloadReport.Cut]
    /// The port it listens on once started (for listen port 0, the one the kernel picked),
    /// without a snapshot's trip to its loops: discovery needs it on the way to a live redirect.
    var listenPort: UInt16 { get }
    /// Its admission, whose strikes the daemon turns into kernel bans (`Admission.onBan`); nil
    /// for a guard without one (fakes in tests).
    var admission: Admission? { get }
}

extension Guard {
    public var name: String { settings.frontEnd.name }

    public var admission: Admission? { nil }

    /// From a snapshot; the relay and the broker answer from their front end.
    public var listenPort: UInt16 { snapshot().status.listenPort }

    /// The connections `update(to: next)` would cut, without cutting them (a dry run): the
    /// same rule, `FrontEndSettings.cuts`, over a snapshot.
    public func wouldCut(updatingTo next: any GuardConfiguration) -> [ReloadReport.Cut] {
        snapshot().connections.compactMap { connection in
            guard let peer = IPAddress(connection.peer), next.frontEnd.cuts(peer) else { return nil }
            return ReloadReport.Cut(connection, reason: .notAllowed)
        }
    }
}
