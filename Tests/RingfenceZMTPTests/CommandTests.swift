import RingfenceTestSupport
import Testing

@testable import RingfenceZMTP

/// Command bodies: golden frames from libzmq and the RFCs, every strictness rule, round trips (docs/zmtp.md §2–§5).
@Suite struct CommandTests {
    // MARK: - Golden frames

    /// READY as libzmq 4.3.4 sends it for `type` (docs/zmtp.md §3).
    private func libzmqReady(_ type: String) -> [UInt8] {
        [0x04, UInt8(22 + type.utf8.count), 0x05] + ascii("READY") + [0x0B] + ascii("Socket-Type")
            + [0, 0, 0, UInt8(type.utf8.count)] + ascii(type)
    }

    @Test func libzmqSubReady() throws {
        let frame = hex("04 19 05") + ascii("READY") + hex("0b") + ascii("Socket-Type") + hex("00 00 00 03") + ascii("SUB")
        #expect(frame == libzmqReady("SUB"))
        let command = try Command.parseFrame(frame)
        #expect(command == .ready(properties: [Property(name: "Socket-Type", value: ascii("SUB"))]))
        #expect(command.socketType == .sub)
        #expect(Command.ready(socketType: .sub).encodedFrame() == frame)
    }

    @Test(arguments: ["PUB", "XPUB", "SUB", "XSUB"])
    func libzmqPubSubReadies(type: String) throws {
        let frame = libzmqReady(type)
        #expect(try Command.parseFrame(frame).socketType == SocketType(rawValue: type))
        #expect(Command.ready(socketType: SocketType(rawValue: type)).encodedFrame() == frame)
    }

    @Test func xpubReadyHasA26ByteBody() {
        #expect(Array(Command.ready(socketType: .xpub).encodedFrame().prefix(2)) == hex("04 1a"))
    }

    @Test func rfc23DealerReadyWithIdentity() throws {
        let frame = hex("04 29 05") + ascii("READY") + hex("0b") + ascii("Socket-Type") + hex("00 00 00 06")
            + ascii("DEALER") + hex("08") + ascii("Identity") + hex("00 00 00 00")
        let expected = Command.ready(properties: [
            Property(name: "Socket-Type", value: ascii("DEALER")), Property(name: "Identity", value: []),
        ])
        #expect(try Command.parseFrame(frame) == expected)
        #expect(expected.encodedFrame() == frame)
        #expect(expected.socketType == .dealer)
    }

    @Test func socketTypePropertyNameIsCaseInsensitive() throws {
        let body = hex("05") + ascii("READY") + hex("0b") + ascii("sOCKET-tYPE") + hex("00 00 00 03") + ascii("PUB")
        #expect(try Command.parse(body).socketType == .pub)
        #expect(try Command.parse(hex("05") + ascii("READY")).socketType == nil)
        #expect(Command.subscribe(topic: []).socketType == nil)
    }

    @Test func subscriptionsAsLibzmqSendsThem() throws {
        #expect(try Command.parseFrame(hex("04 0a 09") + ascii("SUBSCRIBE")) == .subscribe(topic: []))
        #expect(try Command.parseFrame(hex("041009535542534352494245746f70696341")) == .subscribe(topic: ascii("topicA")))
        #expect(try Command.parseFrame(hex("04 0d 06") + ascii("CANCEL") + ascii("topicA")) == .cancel(topic: ascii("topicA")))
        #expect(Command.subscribe(topic: []).encodedFrame() == hex("04 0a 09") + ascii("SUBSCRIBE"))
        #expect(Command.cancel(topic: ascii("topicA")).encodedFrame() == hex("04 0d 06") + ascii("CANCEL") + ascii("topicA"))
    }

    @Test func heartbeatsAndErrors() throws {
        #expect(try Command.parse(hex("04") + ascii("PING") + hex("02 bc") + ascii("ctx")) == .ping(ttl: 700, context: ascii("ctx")))
        #expect(try Command.parse(hex("04") + ascii("PING") + hex("00 00")) == .ping(ttl: 0, context: []))
        #expect(try Command.parse(hex("04") + ascii("PONG")) == .pong(context: []))
        #expect(try Command.parse(hex("04") + ascii("PONG") + zeros(16)) == .pong(context: zeros(16)))
        #expect(try Command.parse(hex("05") + ascii("ERROR") + hex("03") + ascii("400")) == .error(reason: "400"))
        #expect(try Command.parse(hex("05") + ascii("ERROR") + hex("00")) == .error(reason: ""))
        #expect(Command.ping(ttl: 10, context: ascii("ab")).encodedBody() == hex("04") + ascii("PING") + hex("00 0a") + ascii("ab"))
    }

    @Test func unknownCommandsKeepTheirName() throws {
        #expect(try Command.parse(hex("06") + ascii("FOOBAR") + hex("01 02")) == .unknown(name: "FOOBAR"))
        // Names match exactly, as libzmq does: `ready` is not READY.
        #expect(try Command.parse(hex("05") + ascii("ready")) == .unknown(name: "ready"))
    }

    @Test func errorReasonIsCutTo255Bytes() throws {
        let body = Command.error(reason: String(repeating: "x", count: 300)).encodedBody()
        #expect(body.count == 1 + 5 + 1 + 255)
        #expect(try Command.parse(body) == .error(reason: String(repeating: "x", count: 255)))
    }

    @Test func longCommandsUseTheLongHeader() throws {
        let command = Command.subscribe(topic: [UInt8](repeating: 0x61, count: 300))
        let frame = command.encodedFrame()
        #expect(Array(frame.prefix(9)) == hex("06 00 00 00 00 00 00 01 36"))
        #expect(try Command.parseFrame(frame) == command)
    }

    // MARK: - Rejections

    /// Expects `body` to be refused as a malformed `command`.
    private func expectMalformed(_ body: [UInt8], command: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let error = #expect(throws: ZMTPError.self, sourceLocation: sourceLocation) { try Command.parse(body) }
        guard case .malformedCommand(let name, _)? = error else {
            Issue.record("expected a malformed \(command), got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(name == command, sourceLocation: sourceLocation)
    }

    @Test func namesMustBeOneTo255BytesWithinTheBody() {
        expectMalformed([], command: "")
        expectMalformed(hex("00"), command: "")
        expectMalformed(hex("00") + ascii("READY"), command: "")
        expectMalformed(hex("06") + ascii("READY"), command: "")
        expectMalformed(hex("ff") + zeros(254), command: "")
    }

    private let ready = hex("05") + ascii("READY")
    private let socketTypeSub = hex("0b") + ascii("Socket-Type") + hex("00 00 00 03") + ascii("SUB")

    @Test func readyWithATruncatedPropertyIsRejected() {
        let full = ready + socketTypeSub
        // Cut anywhere inside the property: name, value length or value.
        for cut in (ready.count + 1)..<full.count { expectMalformed(Array(full.prefix(cut)), command: "READY") }
    }

    @Test func readyWithATrailingByteIsRejected() {
        expectMalformed(ready + socketTypeSub + hex("00"), command: "READY")
        expectMalformed(ready + socketTypeSub + hex("05"), command: "READY")
    }

    @Test func readyValueLengthOf2To31IsRejected() {
        let body = ready + hex("01") + ascii("X") + hex("80 00 00 00") + zeros(8)
        #expect(throws: ZMTPError.malformedCommand(command: "READY", problem: #"property "X" declares a value of 2147483648 bytes, over 2^31-1"#)) {
            try Command.parse(body)
        }
        expectMalformed(ready + hex("01") + ascii("X") + hex("ff ff ff ff"), command: "READY")
        expectMalformed(ready + hex("01") + ascii("X") + hex("7f ff ff ff") + zeros(4), command: "READY")
    }

    @Test func readyPropertyWithAnEmptyNameIsRejected() {
        expectMalformed(ready + hex("00 00 00 00 00"), command: "READY")
    }

    @Test func pingWithoutItsTwoTTLBytesIsRejected() {
        // libzmq answers these with 16 bytes of stale memory (docs/zmtp.md §5).
        expectMalformed(hex("04") + ascii("PING"), command: "PING")
        expectMalformed(hex("04") + ascii("PING") + hex("01"), command: "PING")
        #expect(throws: ZMTPError.malformedCommand(command: "PING", problem: "only 1 of the 2 TTL bytes")) {
            try Command.parse(hex("04") + ascii("PING") + hex("01"))
        }
    }

    @Test func contextsOver16BytesAreRejected() {
        expectMalformed(hex("04") + ascii("PING") + hex("00 00") + zeros(17), command: "PING")
        expectMalformed(hex("04") + ascii("PONG") + zeros(17), command: "PONG")
    }

    @Test func errorReasonMustFillTheBodyExactly() {
        expectMalformed(hex("05") + ascii("ERROR"), command: "ERROR")
        expectMalformed(hex("05") + ascii("ERROR") + hex("04") + ascii("400"), command: "ERROR")
        expectMalformed(hex("05") + ascii("ERROR") + hex("02") + ascii("400"), command: "ERROR")
    }

    // MARK: - Round trips

    /// A random command of every kind, within the wire limits.
    private func randomCommand(using random: inout SeededRandom) -> Command {
        switch Int.random(in: 0..<7, using: &random) {
        case 0:
            let properties = (0..<Int.random(in: 0...4, using: &random)).map { _ in
                Property(
                    name: random.text(Int.random(in: 1...255, using: &random)),
                    value: random.bytes(Int.random(in: 0...300, using: &random))
                )
            }
            return .ready(properties: properties)
        case 1: return .error(reason: random.text(Int.random(in: 0...255, using: &random)))
        case 2: return .subscribe(topic: random.bytes(Int.random(in: 0...400, using: &random)))
        case 3: return .cancel(topic: random.bytes(Int.random(in: 0...400, using: &random)))
        case 4: return .ping(ttl: UInt16.random(in: 0...UInt16.max, using: &random), context: random.bytes(Int.random(in: 0...16, using: &random)))
        case 5: return .pong(context: random.bytes(Int.random(in: 0...16, using: &random)))
        default: return .unknown(name: "X" + random.text(Int.random(in: 0...254, using: &random), from: "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        }
    }

    @Test(arguments: 0..<20)
    func randomCommandsRoundTrip(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed))
        for _ in 0..<50 {
            let command = randomCommand(using: &random)
            let body = command.encodedBody()
            #expect(body.count == command.encodedBodyCount)
            #expect(try Command.parse(body) == command, "seed \(seed)")
            let frame = command.encodedFrame()
            let header = try #require(try FrameHeader.parse(frame, maxSize: .max))
            #expect(header == FrameHeader(more: false, isCommand: true, size: UInt64(body.count)))
            #expect(Array(frame[header.encodedCount...]) == body)
        }
    }
}
