import Logging
import RingfenceSockets

/// What every guard does first with a socket it has just accepted, before its own work:
/// admission, and where the connection was headed. Refused and unroutable sockets are reset
/// and closed here, and logged, so that the relay and the broker refuse alike.
extension Admission {
    /// Admits `peer`, or resets and closes `fd` and records the refusal in `denials`.
    public func admit(_ fd: Int32, from peer: SocketAddress, denials: DenialLog) -> Bool {
        guard let denial = admit(peer.address) else { return true }
        Posix.close(fd, reset: true)
        denials.record(peer: peer.address, reason: denial.rawValue)
        return false
    }

    /// Where an admitted connection was headed: `fixed` (the policy's `upstream`) or its
    /// original destination (SO_ORIGINAL_DST, after the kernel's redirect). A connection that
    /// has neither, or that was headed for the listen port itself (it reached the guard without
    /// the redirect), is reset and closed, its admission released and a warning logged: nil.
    public func destination(
        of fd: Int32, from peer: SocketAddress, fixed: SocketAddress?, listenPort: UInt16, logger: Logger,
        guardName: String
    ) -> SocketAddress? {
        if let destination = fixed ?? Posix.originalDestination(fd, family: peer.family), destination.port != listenPort {
            return destination
        }
        Posix.close(fd, reset: true)
        release(peer.address)
        logger.warning(
            "connection without an original destination closed (not redirected?)",
            metadata: ["guard": "\(guardName)", "peer": "\(peer.address)"])
        return nil
    }
}
