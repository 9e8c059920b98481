import RingfenceTestSupport
import Testing

@testable import RingfenceZMTP

/// Subscriptions in both wire forms, as libzmq 4.3.4 sends them (docs/zmtp.md §4).
@Suite struct SubscriptionTests {
    @Test func zmtp30MessageForms() {
        #expect(Subscription.fromMessage(hex("01")) == .subscribe([]))
        #expect(Subscription.fromMessage(hex("01") + ascii("topicA")) == .subscribe(ascii("topicA")))
        #expect(Subscription.fromMessage(hex("00") + ascii("topicA")) == .cancel(ascii("topicA")))
        #expect(Subscription.fromMessage(hex("00")) == .cancel([]))
    }

    @Test func otherMessagesAreNotSubscriptions() {
        #expect(Subscription.fromMessage([]) == nil)
        #expect(Subscription.fromMessage(hex("02") + ascii("zz")) == nil)
        #expect(Subscription.fromMessage(ascii("hello")) == nil)
    }

    @Test func zmtp30GoldenFrames() throws {
        // libzmq SUB towards a peer that advertised 3.0: `00 01 01`, `00 07 01 topicA`, `00 07 00 topicA`.
        let cases: [([UInt8], Subscription)] = [
            (hex("00 01 01"), .subscribe([])),
            (hex("00 07 01") + ascii("topicA"), .subscribe(ascii("topicA"))),
            (hex("00 07 00") + ascii("topicA"), .cancel(ascii("topicA"))),
        ]
        for (frame, subscription) in cases {
            let header = try #require(try FrameHeader.parse(frame))
            #expect(!header.isCommand && !header.more)
            #expect(Subscription.fromMessage(Array(frame[header.encodedCount...])) == subscription)
            #expect(subscription.encodedFrame(peerMinor: 0) == frame)
        }
    }

    @Test func zmtp31GoldenFrames() throws {
        let cases: [([UInt8], Subscription)] = [
            (hex("04 0a 09") + ascii("SUBSCRIBE"), .subscribe([])),
            (hex("04 10 09") + ascii("SUBSCRIBE") + ascii("topicA"), .subscribe(ascii("topicA"))),
            (hex("04 0d 06") + ascii("CANCEL") + ascii("topicA"), .cancel(ascii("topicA"))),
        ]
        for (frame, subscription) in cases {
            #expect(Subscription.fromCommand(try Command.parseFrame(frame)) == subscription)
            #expect(subscription.encodedFrame(peerMinor: 1) == frame)
            #expect(subscription.encodedFrame(peerMinor: 2) == frame)
        }
    }

    @Test func otherCommandsAreNotSubscriptions() {
        #expect(Subscription.fromCommand(.ping(ttl: 0, context: [])) == nil)
        #expect(Subscription.fromCommand(.ready(socketType: .sub)) == nil)
        #expect(Subscription.fromCommand(.unknown(name: "FOOBAR")) == nil)
    }

    @Test func longTopicsAreWellFormedInBothForms() throws {
        // libzmq 4.3.4 mis-frames 246–255-byte topics (docs/zmtp.md §4); we must not.
        for count in [244, 245, 246, 254, 255, 256, 1000] {
            let subscription = Subscription.subscribe([UInt8](repeating: 0x74, count: count))
            #expect(try decode(subscription.encodedFrame(peerMinor: 0)) == subscription, "\(count)")
            #expect(try decode(subscription.encodedFrame(peerMinor: 1)) == subscription, "\(count)")
        }
    }

    @Test(arguments: 0..<10)
    func randomSubscriptionsRoundTrip(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed))
        for _ in 0..<100 {
            let topic = random.bytes(Int.random(in: 0...300, using: &random))
            let subscription: Subscription = Bool.random(using: &random) ? .subscribe(topic) : .cancel(topic)
            #expect(subscription.topic == topic)
            for minor: UInt8 in [0, 1] {
                #expect(try decode(subscription.encodedFrame(peerMinor: minor)) == subscription, "seed \(seed)")
            }
        }
    }

    /// Decodes one whole frame in either form.
    private func decode(_ frame: [UInt8]) throws -> Subscription? {
        let header = try #require(try FrameHeader.parse(frame, maxSize: .max))
        try #require(frame.count == header.encodedCount + Int(header.size))
        let body = Array(frame[header.encodedCount...])
        return header.isCommand ? Subscription.fromCommand(try Command.parse(body)) : Subscription.fromMessage(body)
    }
}
