import Logging
import RingfenceSockets

/// What every guard does first with a socket it has just accepted, before its own work:
/// admission. A refused socket is reset and closed here, and logged.
extension Admission {
    /// Admits `peer` and hands `socket` back, or resets and closes it, records the refusal in
    /// `denials` and returns nil.
    public func admit(_ socket: consuming Socket, from peer: SocketAddress, denials: DenialLog) -> Socket? {
        guard let denial = admit(peer.address) else { return socket }
        socket.close(reset: true)
        denials.record(peer: peer.address, reason: denial.rawValue)
        return nil
    }
}
