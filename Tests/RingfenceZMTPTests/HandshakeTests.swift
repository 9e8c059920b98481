import Testing

@testable import RingfenceZMTP

/// The NULL handshake state machine: any chunking gives the same result, it stops exactly at the end of
/// the peer's READY, and every refusal (docs/zmtp.md §1, §3).
@Suite struct HandshakeTests {
    /// What a handshake ended with after a stream, for comparing chunkings.
    private struct Outcome: Equatable {
        var state: Handshake.State
        var consumed: Int
        var peerMinor: UInt8?
        var peerType: SocketType?
        var error: ZMTPError?
    }

    /// Feeds `stream` in chunks of `size` (0: all at once), stopping when a chunk is not fully consumed.
    private func run(_ stream: [UInt8], local: SocketType = .xpub, chunk size: Int, maxCommandBytes: Int = 4096) -> Outcome {
        var handshake = Handshake(localType: local, maxCommandBytes: maxCommandBytes)
        var consumed = 0
        var error: ZMTPError?
        while consumed < stream.count {
            let end = size == 0 ? stream.count : min(stream.count, consumed + size)
            do {
                let chunk = Array(stream[consumed..<end])
                let used = try handshake.feed(chunk)
                consumed += used
                if used < chunk.count { break }
            } catch let failure {
                error = failure
                break
            }
        }
        return Outcome(
            state: handshake.state, consumed: consumed, peerMinor: handshake.peerMinor, peerType: handshake.peerType,
            error: error
        )
    }

    /// Runs `stream` whole, byte by byte and in chunks of 3, 7 and 64, checks they agree, and returns the outcome.
    private func outcome(
        _ stream: [UInt8], local: SocketType = .xpub, maxCommandBytes: Int = 4096,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> Outcome {
        let whole = run(stream, local: local, chunk: 0, maxCommandBytes: maxCommandBytes)
        for size in [1, 3, 7, 64] {
            let chunked = run(stream, local: local, chunk: size, maxCommandBytes: maxCommandBytes)
            #expect(chunked.error == whole.error, "chunks of \(size)", sourceLocation: sourceLocation)
            #expect(chunked.state == whole.state, "chunks of \(size)", sourceLocation: sourceLocation)
            #expect(chunked.peerType == whole.peerType, "chunks of \(size)", sourceLocation: sourceLocation)
            if whole.error == nil {
                #expect(chunked.consumed == whole.consumed, "chunks of \(size)", sourceLocation: sourceLocation)
            }
        }
        return whole
    }

    private let libzmqSubReady = Command.ready(socketType: .sub).encodedFrame()

    @Test func libzmqSubscriberCompletesAndDataIsLeftOver() {
        let data = hex("04 0a 09") + ascii("SUBSCRIBE") + hex("00 03") + ascii("abc")
        let result = outcome(greetingBytes() + libzmqSubReady + data)
        #expect(result == Outcome(state: .done, consumed: 64 + 27, peerMinor: 1, peerType: .sub, error: nil))
    }

    @Test func feedStopsExactlyAtTheEndOfReady() throws {
        var handshake = Handshake(localType: .xsub)
        let xpubReady = Command.ready(socketType: .xpub).encodedFrame()
        #expect(try handshake.feed(greetingBytes(minor: 0) + Array(xpubReady.dropLast())) == 64 + xpubReady.count - 1)
        #expect(handshake.state == .ready)
        #expect(handshake.peerMinor == 0 && handshake.negotiatedMinor == 0)
        #expect(try handshake.feed([xpubReady.last!, 0x00, 0x01, 0x41]) == 1)
        #expect(handshake.state == .done && handshake.peerType == .xpub)
        #expect(try handshake.feed(hex("00 00")) == 0)
    }

    @Test func statesAdvanceInOrder() throws {
        var handshake = Handshake(localType: .xpub)
        #expect(handshake.state == .greeting && handshake.peerMinor == nil)
        #expect(try handshake.feed(Array(greetingBytes().prefix(63))) == 63)
        #expect(handshake.state == .greeting)
        #expect(try handshake.feed([0]) == 1)
        #expect(handshake.state == .ready && handshake.peerMinor == 1 && handshake.peerType == nil)
        #expect(try handshake.feed(libzmqSubReady) == libzmqSubReady.count)
        #expect(handshake.state == .done && handshake.peerType == .sub)
    }

    @Test(arguments: [UInt8(0), 1])
    func openingIsGreetingThenReady(minor: UInt8) {
        let handshake = Handshake(localType: .xsub, minor: minor)
        #expect(handshake.opening == Greeting.encoded(minor: minor) + Command.ready(socketType: .xsub).encodedFrame())
    }

    @Test func twoOfOursShakeHands() throws {
        var publisher = Handshake(localType: .xpub), subscriber = Handshake(localType: .sub, minor: 0)
        #expect(try publisher.feed(subscriber.opening) == subscriber.opening.count)
        #expect(try subscriber.feed(publisher.opening) == publisher.opening.count)
        #expect(publisher.peerType == .sub && subscriber.peerType == .xpub)
        #expect(publisher.negotiatedMinor == 0 && subscriber.negotiatedMinor == 0)
    }

    @Test func lowerCasePropertyNameIsAccepted() {
        let ready = Command.ready(properties: [Property(name: "socket-type", value: ascii("SUB"))]).encodedFrame()
        #expect(outcome(greetingBytes() + ready).peerType == .sub)
    }

    @Test func longFormReadyIsAccepted() {
        let body = Command.ready(socketType: .sub).encodedBody()
        let frame = hex("06 00 00 00 00 00 00 00") + [UInt8(body.count)] + body
        #expect(outcome(greetingBytes() + frame).state == .done)
    }

    // MARK: - Refusals

    /// Expects `stream` to fail the handshake with `error`, whatever the chunking.
    private func expectFailure(
        _ stream: [UInt8], _ error: ZMTPError, local: SocketType = .xpub, maxCommandBytes: Int = 4096,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let result = outcome(stream, local: local, maxCommandBytes: maxCommandBytes, sourceLocation: sourceLocation)
        #expect(result.error == error, sourceLocation: sourceLocation)
        #expect(result.state != .done, sourceLocation: sourceLocation)
    }

    @Test func httpFailsOnItsFirstByte() throws {
        var handshake = Handshake(localType: .xpub)
        #expect(throws: ZMTPError.notZMTP(firstByte: 0x47)) { try handshake.feed(ascii("G")) }
        // It stays failed.
        #expect(throws: ZMTPError.notZMTP(firstByte: 0x47)) { try handshake.feed(greetingBytes()) }
        #expect(handshake.failure == .notZMTP(firstByte: 0x47))
    }

    @Test func badGreetingsFail() {
        expectFailure(ascii("GET / HTTP/1.1\r\n\r\n"), .notZMTP(firstByte: 0x47))
        expectFailure(greetingBytes(signatureEnd: 0x7E), .unversionedPeer(signatureEnd: 0x7E))
        expectFailure(greetingBytes(major: 2), .unsupportedVersion(major: 2))
        expectFailure(greetingBytes(mechanism: ascii("PLAIN")) + libzmqSubReady, .unsupportedMechanism("PLAIN"))
        expectFailure(greetingBytes(mechanism: ascii("CURVE")), .unsupportedMechanism("CURVE"))
        expectFailure(greetingBytes(asServer: 1), .asServerWithNull(1))
    }

    @Test func dataBeforeReadyFailsOnItsFirstByte() {
        expectFailure(greetingBytes() + hex("00"), .dataBeforeReady)
        expectFailure(greetingBytes() + hex("01 05") + ascii("hello"), .dataBeforeReady)
        expectFailure(greetingBytes() + hex("00 01 01"), .dataBeforeReady)
    }

    @Test func commandOverTheCapFailsFromItsHeader() {
        expectFailure(greetingBytes() + hex("06 00 00 00 01 00 00 00 00"), .commandTooLarge(size: 1 << 32, cap: 4096))
        expectFailure(greetingBytes() + hex("04 1a"), .commandTooLarge(size: 26, cap: 25), maxCommandBytes: 25)
        #expect(outcome(greetingBytes() + libzmqSubReady, maxCommandBytes: 25).state == .done)
    }

    @Test func framingErrorsFail() {
        expectFailure(greetingBytes() + hex("0c 00"), .reservedFlagBits(flags: 0x0C))
        expectFailure(greetingBytes() + hex("05 00"), .moreOnCommand)
        expectFailure(greetingBytes() + hex("06 80 00 00 00 00 00 00 00"), .sizeOutOfRange(1 << 63))
    }

    @Test func publisherPeerForOurXPUBIsAMismatch() {
        let pubReady = Command.ready(socketType: .pub).encodedFrame()
        expectFailure(greetingBytes() + pubReady, .socketTypeMismatch(local: .xpub, peer: .pub))
        expectFailure(greetingBytes() + libzmqSubReady, .socketTypeMismatch(local: .xsub, peer: .sub), local: .xsub)
        let lowerCase = Command.ready(properties: [Property(name: "Socket-Type", value: ascii("sub"))]).encodedFrame()
        expectFailure(greetingBytes() + lowerCase, .socketTypeMismatch(local: .xpub, peer: SocketType(rawValue: "sub")))
    }

    @Test func readyWithoutSocketTypeFails() {
        let identityOnly = Command.ready(properties: [Property(name: "Identity", value: [])]).encodedFrame()
        expectFailure(greetingBytes() + identityOnly, .missingSocketType)
        expectFailure(greetingBytes() + Command.ready(properties: []).encodedFrame(), .missingSocketType)
    }

    @Test func readyWithTwoSocketTypesFails() {
        let twice = Command.ready(properties: [
            Property(name: "Socket-Type", value: ascii("SUB")), Property(name: "SOCKET-TYPE", value: ascii("PUB")),
        ]).encodedFrame()
        expectFailure(greetingBytes() + twice, .malformedCommand(command: "READY", problem: "Socket-Type appears 2 times"))
    }

    @Test func malformedReadyFails() {
        let body = hex("05") + ascii("READY") + hex("0b") + ascii("Socket-Type") + hex("00 00 00 04") + ascii("SUB")
        let result = outcome(greetingBytes() + [0x04, UInt8(body.count)] + body)
        guard case .malformedCommand(let name, _)? = result.error else {
            Issue.record("expected a malformed READY, got \(String(describing: result.error))")
            return
        }
        #expect(name == "READY")
    }

    @Test func errorFromThePeerFails() {
        let error = Command.error(reason: "400").encodedFrame()
        expectFailure(greetingBytes() + error, .peerError(reason: "400"))
        #expect(ZMTPError.peerError(reason: "400").errorReason == nil)
    }

    @Test func anotherFirstCommandFails() {
        expectFailure(greetingBytes() + Command.subscribe(topic: []).encodedFrame(), .expectedReady(got: "SUBSCRIBE"))
        expectFailure(greetingBytes() + Command.ping(ttl: 0, context: []).encodedFrame(), .expectedReady(got: "PING"))
    }
}
