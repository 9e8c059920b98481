import RingfenceAddresses
import Synchronization
import Testing

@testable import RingfenceAdmission

/// The strike ledger alone: the window, the threshold, one report per ban, bounds.
@Suite struct StrikeLedgerTests {
    static let peer = IPAddress("10.0.0.7")!
    static let rules = StrikeLedger.Rules(banAfter: 3, window: .seconds(10), banFor: .seconds(60))

    @Test func reportsOnceWhenThePeerReachesTheThresholdWithinTheWindow() {
        var ledger = StrikeLedger(rules: Self.rules)
        let start = ContinuousClock.now
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: start) == nil)
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: start + .seconds(1)) == nil)
        let ban = ledger.strike(Self.peer, reason: .protocolViolation, now: start + .seconds(2))
        #expect(ban == StrikeLedger.Ban(peer: Self.peer, reason: .protocolViolation, strikes: 3, duration: .seconds(60)))
        // Banned: the connections it still holds strike on, and nothing is reported again.
        for second in 3..<62 {
            #expect(ledger.strike(Self.peer, reason: .evicted, now: start + .seconds(second)) == nil)
        }
    }

    @Test func strikesOlderThanTheWindowDoNotCount() {
        var ledger = StrikeLedger(rules: Self.rules)
        let start = ContinuousClock.now
        // One strike every 6 s: never three within 10 s.
        for step in 0..<10 {
            #expect(ledger.strike(Self.peer, reason: .rateLimit, now: start + .seconds(6 * step)) == nil)
        }
        #expect(ledger.strike(Self.peer, reason: .rateLimit, now: start + .seconds(55)) != nil)
    }

    @Test func aPeerIsCountedAfreshOnceItsBanHasRunOut() {
        var ledger = StrikeLedger(rules: Self.rules)
        let start = ContinuousClock.now
        for _ in 0..<2 { _ = ledger.strike(Self.peer, reason: .peerLimit, now: start) }
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: start) != nil)
        let after = start + .seconds(60)
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: after) == nil)
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: after) == nil)
        #expect(ledger.strike(Self.peer, reason: .peerLimit, now: after)?.strikes == 3)
    }

    @Test func peersAreCountedApartAndForgetStartsAfresh() {
        var ledger = StrikeLedger(rules: Self.rules)
        let start = ContinuousClock.now
        let other = IPAddress("fd00::9")!
        for _ in 0..<2 {
            _ = ledger.strike(Self.peer, reason: .timeout, now: start)
            _ = ledger.strike(other, reason: .timeout, now: start)
        }
        ledger.forget(Self.peer)
        #expect(ledger.strike(Self.peer, reason: .timeout, now: start) == nil)
        #expect(ledger.strike(other, reason: .timeout, now: start)?.peer == other)
        // Forgetting a banned peer lets its next strikes ban it again (`proxyctl unban`).
        ledger.forget(other)
        for _ in 0..<2 { #expect(ledger.strike(other, reason: .timeout, now: start) == nil) }
        #expect(ledger.strike(other, reason: .timeout, now: start) != nil)
    }

    @Test func offCountsNothing() {
        var ledger = StrikeLedger(rules: .off)
        for _ in 0..<1000 { #expect(ledger.strike(Self.peer, reason: .peerLimit, now: .now) == nil) }
        #expect(ledger.trackedPeers == 0)
    }

    @Test func pruneForgetsStrikesOutsideTheWindowAndTheTableIsBounded() {
        var ledger = StrikeLedger(rules: Self.rules)
        let start = ContinuousClock.now
        for index in 0..<(StrikeLedger.maxPeers + 100) {
            _ = ledger.strike(.v4(0x0A00_0000 + UInt32(index)), reason: .rateLimit, now: start)
        }
        #expect(ledger.trackedPeers == StrikeLedger.maxPeers)
        ledger.prune(now: start + .seconds(11))
        #expect(ledger.trackedPeers == 0)
    }
}

/// Strikes as `Admission` counts them: refusals at accept but not-allowed, and guards' own.
@Suite struct AdmissionStrikeTests {
    static let allowed = AddressSet([try! CIDR(parsing: "10.0.0.0/24")])
    static let peer = IPAddress("10.0.0.7")!

    final class Reports: Sendable {
        let bans = Mutex([StrikeLedger.Ban]())
    }

    static func admission(perPeer: Int, rate: Int = 1000, banAfter: Int) -> (Admission, Reports) {
        let admission = Admission(
            allow: allowed,
            limits: .init(
                maxConnections: 100, maxConnectionsPerPeer: perPeer, acceptRatePerPeer: rate,
                strikes: .init(banAfter: banAfter, window: .seconds(10), banFor: .seconds(30))))
        let reports = Reports()
        admission.onBan = { ban in reports.bans.withLock { $0.append(ban) } }
        return (admission, reports)
    }

    @Test func refusalsAtTheCapsStrikeAndTheThresholdIsReportedOnce() {
        let (admission, reports) = Self.admission(perPeer: 1, banAfter: 5)
        #expect(admission.admit(Self.peer) == nil)
        for _ in 0..<20 { #expect(admission.admit(Self.peer) == .peerLimit) }
        let bans = reports.bans.withLock { $0 }
        #expect(bans == [StrikeLedger.Ban(peer: Self.peer, reason: .peerLimit, strikes: 5, duration: .seconds(30))])
        #expect(admission.bansReported == 1)
    }

    @Test func notAllowedNeverStrikes() {
        let (admission, reports) = Self.admission(perPeer: 1, banAfter: 1)
        for _ in 0..<10 { #expect(admission.admit(IPAddress("10.9.0.1")!) == .notAllowed) }
        #expect(reports.bans.withLock { $0 }.isEmpty)
    }

    @Test func guardsStrikeForViolationsAndAReloadChangesTheRules() {
        let (admission, reports) = Self.admission(perPeer: 10, banAfter: 3)
        admission.strike(Self.peer, reason: .protocolViolation)
        admission.strike(Self.peer, reason: .timeout)
        var limits = admission.limits
        limits.strikes = .off
        admission.limits = limits
        admission.strike(Self.peer, reason: .evicted)
        #expect(reports.bans.withLock { $0 }.isEmpty)
        limits.strikes = .init(banAfter: 1, window: .seconds(10), banFor: .seconds(5))
        admission.limits = limits
        admission.strike(Self.peer, reason: .evicted)
        #expect(reports.bans.withLock { $0 }.map(\.reason) == [.evicted])
    }
}
