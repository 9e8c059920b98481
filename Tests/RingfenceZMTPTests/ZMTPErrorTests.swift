import Testing

@testable import RingfenceZMTP

/// Error sentences and ERROR reasons.
@Suite struct ZMTPErrorTests {
    private static let all: [ZMTPError] = [
        .notZMTP(firstByte: 0x47), .unversionedPeer(signatureEnd: 0x7E), .unsupportedVersion(major: 2),
        .unsupportedMechanism("PLAIN"), .asServerWithNull(1), .reservedFlagBits(flags: 0x08), .moreOnCommand,
        .sizeOutOfRange(1 << 63), .frameTooLarge(size: 1 << 62, cap: 64 << 20), .commandTooLarge(size: 5000, cap: 4096),
        .malformedCommand(command: "PING", problem: "only 0 of the 2 TTL bytes"), .dataBeforeReady,
        .expectedReady(got: "PING"), .peerError(reason: "400"), .missingSocketType,
        .socketTypeMismatch(local: .xpub, peer: .pub),
    ]

    @Test func sentencesSayWhatHappened() {
        #expect(ZMTPError.frameTooLarge(size: 1 << 62, cap: 64 << 20).description == "frame of 4611686018427387904 bytes is over the 67108864-byte cap")
        #expect(ZMTPError.unversionedPeer(signatureEnd: 0x7E).description == "greeting byte 9 is 0x7e, whose low bit is 0: the peer speaks ZMTP 1.0, which is refused")
        #expect(ZMTPError.socketTypeMismatch(local: .xpub, peer: .pub).description == #"peer's socket type "PUB" cannot talk to our XPUB"#)
        #expect(ZMTPError.malformedCommand(command: "PING", problem: "only 0 of the 2 TTL bytes").description == #"malformed "PING" command: only 0 of the 2 TTL bytes"#)
        #expect(ZMTPError.sizeOutOfRange(1 << 63).description == "frame declares 9223372036854775808 bytes, over ZMTP's maximum of 2^63-1")
        #expect(ZMTPError.peerError(reason: "400").description == #"peer refused the connection with ERROR "400""#)
    }

    @Test func peerTextIsEscapedAndCut() {
        let hostile = String(repeating: "A", count: 100) + "\n"
        let description = ZMTPError.peerError(reason: "x\ny\u{7F}é").description
        #expect(description == #"peer refused the connection with ERROR "x\u{a}y\u{7f}\u{e9}""#)
        let cut = ZMTPError.expectedReady(got: hostile).description
        #expect(cut == "peer sent \"" + String(repeating: "A", count: 64) + "...\" where its READY command was expected")
    }

    @Test(arguments: all)
    func errorReasonsFitAnErrorCommand(error: ZMTPError) throws {
        #expect(!error.description.isEmpty)
        guard let reason = error.errorReason else { return }
        #expect(reason.utf8.count <= 255)
        #expect(reason.utf8.allSatisfy { (0x20...0x7E).contains($0) })
        #expect(try Command.parse(Command.error(reason: reason).encodedBody()) == .error(reason: reason))
    }

    @Test func greetingErrorsAndPeerErrorsHaveNoReason() {
        let withoutReason = Self.all.filter { $0.errorReason == nil }
        #expect(withoutReason == [
            .notZMTP(firstByte: 0x47), .unversionedPeer(signatureEnd: 0x7E), .unsupportedVersion(major: 2),
            .unsupportedMechanism("PLAIN"), .asServerWithNull(1), .peerError(reason: "400"),
        ])
        #expect(ZMTPError.socketTypeMismatch(local: .xpub, peer: .pub).errorReason == "invalid socket type")
    }
}
