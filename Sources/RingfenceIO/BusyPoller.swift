/// Busy polling for one connection: after bytes move, its owner's `turn` (non-blocking reads)
/// runs again and again on the loop, with the connection's read sources suspended, until
/// `window` passes without activity; then the sources resume and `turn` runs once more, for
/// what arrived in between.
///
/// Why: Dispatch hands each socket event from its epoll thread to a worker thread, and on a
/// small VM those wake-ups cost more than relaying a small message does. A thread that is
/// already running finds the next request or reply without being woken. Turns are queued one
/// at a time, so the loop's other work runs in between. The price is CPU: up to `window` after
/// each burst. Confined to its loop.
public final class BusyPoller: @unchecked Sendable {
    public let window: Duration
    private let loop: EventLoop
    private let channels: () -> [Channel]
    private let turn: () -> Void
    private var lastActivity = ContinuousClock.now
    /// Turns are running (the channels' read sources are suspended).
    public private(set) var isPolling = false

    /// - Parameters:
    ///   - window: how long to poll after the last activity; zero: never.
    ///   - channels: the channels whose read sources polling replaces.
    ///   - turn: one non-blocking read attempt on each of them; it reports bytes with `activity()`.
    public init(window: Duration, loop: EventLoop, channels: @escaping () -> [Channel], turn: @escaping () -> Void) {
        self.window = window
        self.loop = loop
        self.channels = channels
        self.turn = turn
    }

    /// Bytes moved now: poll on for `window` from here, starting if not polling.
    public func activity() {
        guard window > .zero else { return }
        lastActivity = .now
        guard !isPolling else { return }
        isPolling = true
        for channel in channels() { channel.setPolled(true) }
        loop.execute { [weak self] in self?.runTurn() }
    }

    /// Hands the descriptors back to their read sources (also when the connection stops reading or closes).
    public func stop() {
        guard isPolling else { return }
        isPolling = false
        for channel in channels() { channel.setPolled(false) }
    }

    private func runTurn() {
        guard isPolling else { return }
        turn()
        guard isPolling else { return }
        if ContinuousClock.now - lastActivity < window {
            loop.execute { [weak self] in self?.runTurn() }
        } else {
            stop()
            turn()
        }
    }
}
