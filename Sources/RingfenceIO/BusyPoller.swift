import RingfenceSockets

/// Busy polling for one connection: after bytes move, a turn — one read attempt on each of its
/// channels (`Channel.readNow()`, which runs the owner's `onReadable`) — runs again and again on
/// the loop, with the channels' read sources suspended, until `window` passes without activity;
/// then the sources resume and one more turn runs, for what arrived in between. It is one of the
/// ways a `Channel` gets a read attempt (see `Channel`), not a separate read path.
///
/// Why: Dispatch hands each socket event from its epoll thread to a worker thread, and on a
/// small VM those wake-ups cost more than relaying a small message does (two context switches
/// where one would do). A thread that is already running finds the next request or reply
/// without being woken; one that sleeps in ppoll(2) on the socket itself is woken once, by the
/// kernel. Turns are queued one at a time, so the loop's other work runs in between
/// (docs/libdispatch.md §9). Confined to its loop.
public final class BusyPoller: @unchecked Sendable {
    /// How a turn waits for the next bytes.
    public enum Mode: Sendable {
        /// Not at all: turns follow each other at once. The lowest latency for a request and
        /// its reply; the price is a core, for up to `window` after each burst.
        case spin
        /// Sleeps in ppoll(2) on the descriptors, for at most `waitSlice` a turn so that the
        /// loop's other work still runs: about one context switch per wake-up, and little CPU.
        case wait
    }

    /// The longest one `.wait` turn sleeps: what the loop's other work may wait behind it.
    public static let waitSlice = Duration.microseconds(250)

    public let window: Duration
    public let mode: Mode
    private let loop: EventLoop
    private let channels: () -> [Channel]
    private var lastActivity = ContinuousClock.now
    /// `.wait`: the descriptors a turn sleeps on, taken when polling starts (not per turn: the
    /// turns are the hot path).
    private var waitFDs: [Int32] = []
    /// The channels a turn reads, taken when polling starts (not per turn: the turns are the hot
    /// path, and asking the owner allocates an array each time); emptied when polling stops.
    private var polled: [Channel] = []
    /// Turns are running (the channels' read sources are suspended).
    public private(set) var isPolling = false

    /// - Parameters:
    ///   - window: how long to poll after the last activity; zero: never.
    ///   - channels: the channels whose read sources polling replaces, read in this order each
    ///     turn; their owners report bytes with `activity()`.
    public init(window: Duration, mode: Mode = .spin, loop: EventLoop, channels: @escaping () -> [Channel]) {
        self.window = window
        self.mode = mode
        self.loop = loop
        self.channels = channels
    }

    /// One read attempt on each polled channel.
    private func turn() {
        for channel in polled { channel.readNow() }
    }

    /// Bytes moved now: poll on for `window` from here, starting if not polling.
    public func activity() {
        guard window > .zero else { return }
        lastActivity = .now
        guard !isPolling else { return }
        isPolling = true
        polled = channels()
        for channel in polled { channel.setPolled(true) }
        if mode == .wait { waitFDs = polled.map(\.fd) }
        loop.execute { [weak self] in self?.runTurn() }
    }

    /// Hands the descriptors back to their read sources (also when the connection stops reading or closes).
    public func stop() {
        guard isPolling else { return }
        isPolling = false
        for channel in polled { channel.setPolled(false) }
        polled = []
    }

    private func runTurn() {
        guard isPolling else { return }
        if mode == .wait {
            let left = window - (ContinuousClock.now - lastActivity)
            if left > .zero { Posix.waitReadable(waitFDs, timeout: min(left, Self.waitSlice)) }
        }
        turn()
        guard isPolling else { return }
        if ContinuousClock.now - lastActivity < window {
            loop.execute { [weak self] in self?.runTurn() }
        } else {
            // The read sources resume first; then one more read for what arrived in between.
            let last = polled
            stop()
            for channel in last { channel.readNow() }
        }
    }
}
