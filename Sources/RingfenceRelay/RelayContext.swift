import Logging
import RingfenceAdmission
import RingfenceIO
import RingfenceStatus
import Synchronization

/// What a guard's sessions share: its limits, logger and admission, and the per-loop tables
/// of live sessions and of the totals of ended ones (each loop's entry is touched only on that
/// loop, so a loop's snapshot counts every session once).
final class RelayContext: @unchecked Sendable {
    let guardName: String
    let logger: Logger
    let admission: Admission
    /// The limits in force: a reload may change them; a session reads them once when it starts
    /// (buffers, gate limits, `busy_poll`) and the sweep once per round (timeouts).
    private let current: Mutex<RelayLimits>
    /// Live sessions by loop index, then by id. Entry `i` belongs to loop `i`.
    private var sessions: [[UInt64: RelaySession]]
    /// What ended sessions moved, by loop index. Entry `i` belongs to loop `i`.
    private var ended: [GuardCounters]
    /// Idle pipes for the splice pumps and buffers for the gated ones, by loop index. Entry `i`
    /// belongs to loop `i`.
    private let pipePools: [IdlePool<SplicePipe>]
    private let bufferPools: [IdlePool<UnsafeMutableRawBufferPointer>]

    init(guardName: String, limits: RelayLimits, admission: Admission, logger: Logger, loops: Int) {
        self.guardName = guardName
        current = Mutex(limits)
        self.admission = admission
        self.logger = logger
        sessions = Array(repeating: [:], count: loops)
        ended = Array(repeating: GuardCounters(), count: loops)
        pipePools = (0..<loops).map { _ in .pipes() }
        bufferPools = (0..<loops).map { _ in .buffers() }
    }

    /// The pool of idle pipes of `loop`'s sessions. On that loop.
    func pipes(on loop: EventLoop) -> IdlePool<SplicePipe> {
        loop.preconditionInLoop()
        return pipePools[loop.index]
    }

    /// The pool of idle gate buffers of `loop`'s sessions. On that loop.
    func buffers(on loop: EventLoop) -> IdlePool<UnsafeMutableRawBufferPointer> {
        loop.preconditionInLoop()
        return bufferPools[loop.index]
    }

    /// Releases what `loop`'s pools did not need since the last call (`all`: everything idle).
    func trimPools(on loop: EventLoop, all: Bool = false) {
        loop.preconditionInLoop()
        if all {
            pipePools[loop.index].drain()
            bufferPools[loop.index].drain()
        } else {
            pipePools[loop.index].trim()
            bufferPools[loop.index].trim()
        }
    }

    var limits: RelayLimits {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    func sessionStarted(_ session: RelaySession) {
        session.loop.preconditionInLoop()
        sessions[session.loop.index][session.id] = session
    }

    func sessionEnded(_ session: RelaySession, violation: Bool, cutByReload: Bool) {
        session.loop.preconditionInLoop()
        sessions[session.loop.index][session.id] = nil
        admission.release(session.peer.address)
        let index = session.loop.index
        ended[index].bytesFromPeers += session.bytesFromClient
        ended[index].bytesToPeers += session.bytesToClient
        ended[index].bytesFromUpstream += session.bytesToClient
        if violation { ended[index].violations += 1 }
        if cutByReload { ended[index].cutByReload += 1 }
    }

    /// The totals of `loop`'s ended sessions plus what its live ones have moved, and the live
    /// ones. On that loop.
    func snapshot(on loop: EventLoop, now: ContinuousClock.Instant) -> (GuardCounters, [ConnectionStatus]) {
        loop.preconditionInLoop()
        var totals = ended[loop.index]
        var connections: [ConnectionStatus] = []
        for session in sessions[loop.index].values {
            totals.bytesFromPeers += session.bytesFromClient
            totals.bytesToPeers += session.bytesToClient
            totals.bytesFromUpstream += session.bytesToClient
            connections.append(session.status(now: now))
        }
        return (totals, connections)
    }

    /// The sessions of `loop`, for its deadline sweep and shutdown. On that loop.
    func sessions(on loop: EventLoop) -> [RelaySession] {
        loop.preconditionInLoop()
        return Array(sessions[loop.index].values)
    }
}
