import Logging
import RingfenceAdmission
import RingfenceIO
import RingfencePolicy
import RingfenceTCPStore

/// What a guard's sessions share: its settings, logger and admission, and the per-loop table of
/// live sessions (each loop's entry is touched only on that loop).
final class RelayContext: @unchecked Sendable {
    let guardName: String
    let settings: RelaySettings
    let tcpstoreLimits: TCPStoreLimits
    let logger: Logger
    let admission: Admission
    /// Live sessions by loop index, then by id. Entry `i` belongs to loop `i`.
    private var sessions: [[UInt64: RelaySession]]

    init(guardName: String, settings: RelaySettings, admission: Admission, logger: Logger, loops: Int) {
        self.guardName = guardName
        self.settings = settings
        tcpstoreLimits = TCPStoreLimits(
            maxKeyBytes: settings.maxKeyBytes.bytes, maxValueBytes: settings.maxValueBytes.bytes, maxKeys: settings.maxKeys)
        self.admission = admission
        self.logger = logger
        sessions = Array(repeating: [:], count: loops)
    }

    func sessionStarted(_ session: RelaySession) {
        session.loop.preconditionInLoop()
        sessions[session.loop.index][session.id] = session
    }

    func sessionEnded(_ session: RelaySession) {
        session.loop.preconditionInLoop()
        sessions[session.loop.index][session.id] = nil
        admission.release(session.peer.address)
    }

    /// The sessions of `loop`, for its deadline sweep and shutdown. On that loop.
    func sessions(on loop: EventLoop) -> [RelaySession] {
        loop.preconditionInLoop()
        return Array(sessions[loop.index].values)
    }
}
