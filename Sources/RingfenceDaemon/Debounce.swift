/// Coalesces a burst of events into one action: the action is due `quiet` after the last event
/// of the burst, but never later than `longest` after its first, so a file rewritten without
/// pause is still reloaded. A pure state machine; the policy watch keeps its timer on the
/// deadline `event(at:)` returns and calls `fired()` when the timer runs.
struct Debounce: Sendable {
    /// The quiet time that ends a burst.
    let quiet: Duration
    /// The longest a burst can postpone the action.
    let longest: Duration

    /// Idle, or a burst under way: when it began and when the action is due.
    enum State: Equatable, Sendable {
        case idle
        case pending(first: ContinuousClock.Instant, due: ContinuousClock.Instant)
    }

    private(set) var state = State.idle

    init(quiet: Duration = .milliseconds(100), longest: Duration = .seconds(1)) {
        self.quiet = quiet
        self.longest = longest
    }

    /// Notes an event at `now`.
    /// - Returns: when the action is due now (the timer's new deadline).
    mutating func event(at now: ContinuousClock.Instant) -> ContinuousClock.Instant {
        let first: ContinuousClock.Instant
        if case .pending(let began, _) = state { first = began } else { first = now }
        let due = min(now + quiet, first + longest)
        state = .pending(first: first, due: due)
        return due
    }

    /// The timer ran: true (and idle again) if a burst was pending, false if nothing was.
    mutating func fired() -> Bool {
        guard case .pending = state else { return false }
        state = .idle
        return true
    }
}
