import RingfenceAddresses
import Testing

@testable import RingfenceListeners

@Suite struct ListenerTrackerTests {
    static func socket(_ port: UInt16, inode: UInt64, _ address: String = "127.0.0.1") -> ListeningSocket {
        ListeningSocket(address: IPAddress(address)!, port: port, inode: inode, uid: 0)
    }

    @Test func listingsDiffPerFamily() {
        var tracker = ListenerTracker()
        _ = tracker.reconcile(family: 2, listing: [Self.socket(80, inode: 1)])
        _ = tracker.reconcile(family: 10, listing: [Self.socket(80, inode: 2, "::1")])
        #expect(tracker.knows(family: 2, port: 80) && tracker.knows(family: 10, port: 80))
        #expect(!tracker.knows(family: 2, port: 81))

        let next = tracker.reconcile(family: 2, listing: [Self.socket(80, inode: 1), Self.socket(81, inode: 3)])
        #expect(next.appeared == [Self.socket(81, inode: 3)] && next.disappeared.isEmpty)
        // The same port bound again (a new inode) is one disappearance and one appearance.
        let rebound = tracker.reconcile(family: 2, listing: [Self.socket(80, inode: 4), Self.socket(81, inode: 3)])
        #expect(rebound.appeared == [Self.socket(80, inode: 4)] && rebound.disappeared == [Self.socket(80, inode: 1)])
        // The other family is untouched.
        #expect(tracker.reconcile(family: 10, listing: [Self.socket(80, inode: 2, "::1")]) == ([], []))
    }
}
