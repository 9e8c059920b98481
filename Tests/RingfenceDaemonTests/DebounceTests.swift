import Testing

@testable import RingfenceDaemon

@Suite struct DebounceTests {
    let start = ContinuousClock.now

    @Test func aBurstIsDueAQuietTimeAfterItsLastEvent() {
        var debounce = Debounce(quiet: .milliseconds(100), longest: .seconds(1))
        var seen: [ContinuousClock.Instant] = []
        for offset in [0, 30, 90] {
            seen.append(debounce.event(at: start + .milliseconds(offset)))
        }
        #expect(seen == [start + .milliseconds(100), start + .milliseconds(130), start + .milliseconds(190)])
        let first = debounce.fired()
        // One burst, one action: the timer running again finds nothing pending.
        let second = debounce.fired()
        #expect(first && !second)
        #expect(debounce.state == .idle)
    }

    @Test func aBurstWithoutPauseIsDueAtTheLongestAfterItsFirstEvent() {
        var debounce = Debounce(quiet: .milliseconds(100), longest: .milliseconds(250))
        var due = start
        for step in 0..<10 {
            due = debounce.event(at: start + .milliseconds(50 * step))
        }
        #expect(due == start + .milliseconds(250))
        let fired = debounce.fired()
        #expect(fired)
        // The next event starts a new burst.
        let next = debounce.event(at: start + .seconds(2))
        #expect(next == start + .seconds(2) + .milliseconds(100))
    }

    @Test func theTimerWithNothingPendingDoesNothing() {
        var debounce = Debounce()
        let fired = debounce.fired()
        #expect(!fired)
    }
}
