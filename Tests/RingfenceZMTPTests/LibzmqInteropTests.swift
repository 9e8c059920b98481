import CZeroMQ
import RingfenceTestSupport
import Testing

@testable import RingfenceZMTP

/// The codec against the real libzmq 4.3.4 over loopback TCP, in both directions. Every blocking call is
/// bounded (2-second socket timeouts), so a failure fails fast instead of hanging.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct LibzmqInteropTests {
    /// A recognisable body of `count` bytes.
    private func pattern(_ count: Int, seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) &+ seed }
    }

    /// We are the XSUB towards a libzmq XPUB: handshake, both subscription forms, a multipart message, PING.
    @Test func ourXSUBAgainstLibzmqXPUB() throws {
        let publisher = try LibzmqSocket(type: ZMQ_XPUB)
        try publisher.set(ZMQ_XPUB_VERBOSE, 1)
        let port = try publisher.bindLoopback()
        let connection = try LoopbackSocket.connect(port: port)

        let handshake = try connection.handshake(as: .xsub)
        #expect(handshake.peerType == .xpub)
        #expect(handshake.peerMinor == 1)  // libzmq always advertises 3.1
        let minor = try #require(handshake.negotiatedMinor)

        // Subscribe to everything in the negotiated form, and to "t" in the 3.0 data form: XPUB takes both.
        try connection.send(Subscription.subscribe([]).encodedFrame(peerMinor: minor))
        try connection.send(Subscription.subscribe(ascii("t")).encodedFrame(peerMinor: 0))
        #expect(try publisher.receive() == (hex("01"), false))
        #expect(try publisher.receive() == (hex("01") + ascii("t"), false))

        // A 3-frame message: short header, then long headers for 300 bytes and 1 MiB.
        let bodies = [ascii("hello"), pattern(300, seed: 1), pattern(1 << 20, seed: 2)]
        for (index, body) in bodies.enumerated() { try publisher.send(body, more: index < bodies.count - 1) }
        for (index, body) in bodies.enumerated() {
            let frame = try connection.nextFrame()
            #expect(!frame.header.isCommand)
            #expect(frame.header.more == (index < bodies.count - 1))
            #expect(frame.header.encodedCount == (body.count <= 255 ? 2 : 9))
            #expect(frame.body == body, "frame \(index)")
        }

        // libzmq answers a PING with a PONG echoing its context.
        try connection.send(Command.ping(ttl: 0, context: ascii("ctx-42")).encodedFrame())
        let pong = try connection.nextFrame()
        #expect(pong.header.isCommand)
        #expect(try Command.parse(pong.body) == .pong(context: ascii("ctx-42")))
    }

    /// We are the XPUB towards a libzmq SUB that subscribes to "" and "abc"; then we publish to it.
    @Test(arguments: [UInt8(1), 0])
    func libzmqSUBAgainstOurXPUB(minor: UInt8) throws {
        let (listener, port) = try LoopbackSocket.listen()
        let subscriber = try LibzmqSocket(type: ZMQ_SUB)
        try subscriber.set(ZMQ_SUBSCRIBE, bytes: [])
        try subscriber.set(ZMQ_SUBSCRIBE, bytes: ascii("abc"))
        try subscriber.connectLoopback(port: port)
        let connection = try listener.accept()

        let handshake = try connection.handshake(as: .xpub, minor: minor)
        #expect(handshake.peerType == .sub)
        #expect(handshake.negotiatedMinor == minor)

        // libzmq SUB replays its subscriptions in trie order; compare as a set.
        var subscriptions: Set<Subscription> = []
        var frames: [[UInt8]] = []
        for _ in 0..<2 {
            let frame = try connection.nextFrame()
            #expect(!frame.header.more)
            frames.append(FrameHeader.encode(size: frame.body.count, more: false, command: frame.header.isCommand) + frame.body)
            if minor >= 1 {
                // 3.1: SUBSCRIBE commands.
                #expect(frame.header.isCommand)
                subscriptions.insert(try #require(Subscription.fromCommand(try Command.parse(frame.body))))
            } else {
                // 3.0: libzmq downgrades to `00 <size> 01 topic` data messages.
                #expect(!frame.header.isCommand)
                subscriptions.insert(try #require(Subscription.fromMessage(frame.body)))
            }
        }
        #expect(subscriptions == [.subscribe([]), .subscribe(ascii("abc"))])
        if minor == 0 {
            #expect(frames.contains(hex("00 01 01")))
            #expect(frames.contains(hex("00 04 01") + ascii("abc")))
        } else {
            #expect(frames.contains(hex("04 0a 09") + ascii("SUBSCRIBE")))
        }

        // A single-frame message, then a 2-frame one with a long second frame.
        let message = ascii("abc: hello")
        try connection.send(FrameHeader.encode(size: message.count, more: false, command: false) + message)
        #expect(try subscriber.receive() == (message, false))
        let second = pattern(1000, seed: 7)
        try connection.send(
            FrameHeader.encode(size: 3, more: true, command: false) + ascii("xyz")
                + FrameHeader.encode(size: second.count, more: false, command: false) + second
        )
        #expect(try subscriber.receive() == (ascii("xyz"), true))
        #expect(try subscriber.receive() == (second, false))
    }

    /// A libzmq PUB connecting to our XPUB is refused as a socket-type mismatch, from its real READY.
    ///
    /// Only our greeting is sent first: given our greeting and READY together, libzmq reads both before
    /// flushing anything, finds the mismatch and closes with its own greeting and READY unsent.
    @Test func libzmqPUBIsRefusedByOurXPUB() throws {
        let (listener, port) = try LoopbackSocket.listen()
        let publisher = try LibzmqSocket(type: ZMQ_PUB)
        try publisher.connectLoopback(port: port)
        let connection = try listener.accept()
        var handshake = Handshake(localType: .xpub)
        try connection.send(Array(handshake.opening.prefix(Greeting.size)))
        #expect(throws: ZMTPError.socketTypeMismatch(local: .xpub, peer: .pub)) {
            while true { _ = try handshake.feed(try connection.receive()) }
        }
        #expect(handshake.state == .ready)
    }

    /// libzmq closes when the first frame after the greeting is data rather than READY (docs/zmtp.md §2),
    /// and, as for any handshake failure after reading our whole opening, without flushing its greeting
    /// and READY: a session towards libzmq must expect a plain close, even before 64 bytes.
    @Test(arguments: [false, true])
    func libzmqClosesOnABadOpening(dataInsteadOfReady: Bool) throws {
        let publisher = try LibzmqSocket(type: ZMQ_XPUB)
        let port = try publisher.bindLoopback()
        let connection = try LoopbackSocket.connect(port: port)
        let second = dataInsteadOfReady ? hex("00 01 01") : Command.ready(socketType: .pub).encodedFrame()
        try connection.send(Greeting.encoded() + second)
        let received = try connection.receiveUntilClosed()  // a close, not the 2-second timeout
        // Whatever did arrive is a valid start of a handshake.
        var handshake = Handshake(localType: .xsub)
        #expect(try handshake.feed(received) == received.count)
        #expect(handshake.state != .done)
    }
}
