import Logging
import RingfenceAddresses
import Synchronization

/// Logs refused connections without letting a flood flood the log: the first refusal of a
/// peer for a reason in an interval is logged at once; the rest are counted and logged as one
/// line per peer and reason when the interval ends (`count=N`).
public final class DenialLog: Sendable {
    private struct Key: Hashable {
        var peer: IPAddress
        var reason: String
    }

    private let logger: Logger
    private let guardName: String
    /// Refusals not yet logged, by peer and reason; a key present with 0 was logged at once.
    private let pending = Mutex([Key: Int]())

    public init(logger: Logger, guardName: String) {
        self.logger = logger
        self.guardName = guardName
    }

    public func record(peer: IPAddress, reason: String) {
        let key = Key(peer: peer, reason: reason)
        let first = pending.withLock { pending -> Bool in
            if let count = pending[key] {
                pending[key] = count + 1
                return false
            }
            pending[key] = 0
            return true
        }
        if first { emit(key, count: 1) }
    }

    /// Accepting failed for want of resources (out of descriptors): logged like a refusal of the
    /// unknown peer 0.0.0.0, at once and then at most once per interval with a count.
    public func recordAcceptFailure(error: String) {
        record(peer: .v4(0), reason: "accept-failed: \(error)")
    }

    /// Logs the counts gathered since the last flush; call once per interval.
    public func flush() {
        let counts = pending.withLock { pending -> [Key: Int] in
            defer { pending = [:] }
            return pending
        }
        for (key, count) in counts where count > 0 { emit(key, count: count) }
    }

    private func emit(_ key: Key, count: Int) {
        logger.warning(
            "connection denied",
            metadata: ["guard": "\(guardName)", "peer": "\(key.peer)", "reason": "\(key.reason)", "count": "\(count)"])
    }
}
