import RingfenceAddresses
import Testing

@testable import RingfenceAdmission

@Suite struct AdmissionTests {
    static let allowed = AddressSet([try! CIDR(parsing: "10.0.0.0/24"), try! CIDR(parsing: "fd00::/64")])
    static let peer = IPAddress("10.0.0.7")!

    static func admission(total: Int = 100, perPeer: Int = 100, rate: Int = 1000) -> Admission {
        Admission(allow: allowed, limits: .init(maxConnections: total, maxConnectionsPerPeer: perPeer, acceptRatePerPeer: rate))
    }

    @Test func refusesPeersOutsideTheAllowlistWhateverTheirFamily() {
        let admission = Self.admission()
        #expect(admission.admit(IPAddress("10.0.1.1")!) == .notAllowed)
        #expect(admission.admit(IPAddress("fd01::1")!) == .notAllowed)
        #expect(admission.admit(IPAddress("::ffff:10.0.0.9")!) == nil)
        #expect(admission.admit(IPAddress("fd00::9")!) == nil)
        #expect(admission.connectionCount == 2)
    }

    @Test func capsConnectionsPerPeerAndInTotalAndGivesPlacesBack() {
        let admission = Self.admission(total: 3, perPeer: 2)
        #expect(admission.admit(Self.peer) == nil)
        #expect(admission.admit(Self.peer) == nil)
        #expect(admission.admit(Self.peer) == .peerLimit)
        let other = IPAddress("10.0.0.8")!
        #expect(admission.admit(other) == nil)
        #expect(admission.admit(IPAddress("10.0.0.9")!) == .totalLimit)
        admission.release(Self.peer)
        #expect(admission.admit(Self.peer) == nil)
        #expect(admission.connectionCount == 3)
    }

    @Test func limitsTheAcceptRatePerPeerWithATokenBucket() {
        let admission = Self.admission(rate: 5)
        let start = ContinuousClock.now
        var admitted = 0
        for _ in 0..<20 where admission.admit(Self.peer, now: start) == nil { admitted += 1 }
        #expect(admitted == 5)
        #expect(admission.admit(Self.peer, now: start) == .rateLimit)
        // Another peer has its own bucket.
        #expect(admission.admit(IPAddress("10.0.0.8")!, now: start) == nil)
        // Refilled at 5 per second: one more after 0.2 s, all five after a second.
        #expect(admission.admit(Self.peer, now: start + .milliseconds(210)) == nil)
        var later = 0
        for _ in 0..<20 where admission.admit(Self.peer, now: start + .seconds(2)) == nil { later += 1 }
        #expect(later == 5)
    }

    @Test func anAllowlistSwapTakesEffectForTheNextConnection() {
        let admission = Self.admission()
        #expect(admission.admit(Self.peer) == nil)
        admission.allow = AddressSet([try! CIDR(parsing: "192.168.0.0/16")])
        #expect(admission.admit(Self.peer) == .notAllowed)
        #expect(admission.admit(IPAddress("192.168.3.4")!) == nil)
    }

    @Test func pruningForgetsRefilledBuckets() {
        let admission = Self.admission(total: 1000, perPeer: 1000, rate: 2)
        let start = ContinuousClock.now
        for index in 0..<200 {
            _ = admission.admit(.v4(0x0a00_0000 + UInt32(index % 250)), now: start)
        }
        admission.prune(now: start + .seconds(5))
        // After pruning, a peer starts with a full bucket again.
        #expect(admission.admit(Self.peer, now: start + .seconds(5)) == nil)
        #expect(admission.admit(Self.peer, now: start + .seconds(5)) == nil)
        #expect(admission.admit(Self.peer, now: start + .seconds(5)) == .rateLimit)
    }
}
