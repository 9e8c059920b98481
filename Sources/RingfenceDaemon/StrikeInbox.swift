import RingfenceAdmission
import Synchronization

/// Carries the bans a guard's admission reports (`Admission.onBan`, on the guard's loop) to the
/// daemon, which bans in the kernel on its own queue. Made before the daemon, whose handler
/// it gets once the daemon is whole; a ban reported before that, or after, is dropped (the
/// peer's next strikes report it again once its ban would have run out).
final class StrikeInbox: Sendable {
    private let handler = Mutex<(@Sendable (_ guardName: String, _ ban: StrikeLedger.Ban) -> Void)?>(nil)

    /// Where bans go from now on.
    func connect(_ handler: @escaping @Sendable (_ guardName: String, _ ban: StrikeLedger.Ban) -> Void) {
        self.handler.withLock { $0 = handler }
    }

    /// `guardName`'s admission reported `ban`.
    func post(guardName: String, _ ban: StrikeLedger.Ban) {
        handler.withLock { $0 }?(guardName, ban)
    }
}
