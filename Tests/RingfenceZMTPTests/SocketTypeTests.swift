import Testing

@testable import RingfenceZMTP

/// Socket types and the pairs libzmq accepts (docs/zmtp.md §3).
@Suite struct SocketTypeTests {
    @Test func publishersAndSubscribersPair() {
        for publisher in [SocketType.pub, .xpub] {
            for subscriber in [SocketType.sub, .xsub] {
                #expect(publisher.accepts(subscriber))
                #expect(subscriber.accepts(publisher))
            }
        }
    }

    @Test func sameSidesDoNotPair() {
        #expect(!SocketType.xpub.accepts(.pub))
        #expect(!SocketType.xpub.accepts(.xpub))
        #expect(!SocketType.sub.accepts(.xsub))
        #expect(!SocketType.xsub.accepts(.sub))
        #expect(!SocketType.xpub.accepts(.dealer))
    }

    @Test func valuesCompareExactly() {
        #expect(SocketType(rawValue: "sub") != .sub)
        #expect(!SocketType.xpub.accepts(SocketType(rawValue: "sub")))
        #expect(!SocketType.xpub.accepts(SocketType(rawValue: "SUB ")))
        #expect(!SocketType(rawValue: "FOO").accepts(.sub))
    }

    @Test func otherRFC23Pairs() {
        #expect(SocketType.req.accepts(.router) && SocketType.req.accepts(.rep) && !SocketType.req.accepts(.req))
        #expect(SocketType.dealer.accepts(.dealer) && SocketType.router.accepts(.router))
        #expect(SocketType.push.accepts(.pull) && SocketType.pull.accepts(.push) && !SocketType.push.accepts(.push))
        #expect(SocketType.pair.accepts(.pair))
    }

    @Test func rawValuesAreTheWireNames() {
        #expect([SocketType.pub, .xpub, .sub, .xsub].map(\.rawValue) == ["PUB", "XPUB", "SUB", "XSUB"])
        #expect(SocketType.xsub.description == "XSUB")
    }
}
