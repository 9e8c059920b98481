import Logging
import RingfenceSockets

/// What every guard does first with a socket it has just accepted, before its own work:
/// admission. A refused socket is reset and closed here, and logged.
extension Admission {
    /// Admits `peer`, or resets and closes `fd` and records the refusal in `denials`.
    public func admit(_ fd: Int32, from peer: SocketAddress, denials: DenialLog) -> Bool {
        guard let denial = admit(peer.address) else { return true }
        Posix.close(fd, reset: true)
        denials.record(peer: peer.address, reason: denial.rawValue)
        return false
    }
}
