import Testing

@testable import RingfenceZMTP

/// The 64-byte greeting: golden bytes, and every way a peer's greeting is refused (docs/zmtp.md §1).
@Suite struct GreetingTests {
    /// libzmq 4.3.4's greeting as observed: padding `00 … 01` (routing id length + 1), version 3.1.
    private let libzmqGreeting = hex("ff 00 00 00 00 00 00 00 01 7f 03 01") + ascii("NULL") + zeros(16) + [0] + zeros(31)

    @Test func libzmqGreetingParses() throws {
        #expect(libzmqGreeting.count == Greeting.size)
        #expect(libzmqGreeting == greetingBytes())
        let greeting = try Greeting.parse(libzmqGreeting)
        #expect(greeting == Greeting(major: 3, minor: 1, mechanism: "NULL", asServer: false))
    }

    @Test(arguments: [UInt8(0), 1])
    func ourGreetingIsExact(minor: UInt8) throws {
        let expected = hex("ff 00 00 00 00 00 00 00 00 7f 03") + [minor] + ascii("NULL") + zeros(16) + [0] + zeros(31)
        #expect(Greeting.encoded(minor: minor) == expected)
        #expect(try Greeting.parse(expected).minor == minor)
    }

    @Test func defaultIsThreeOne() {
        #expect(Greeting.encoded()[11] == 1)
    }

    @Test func newerVersionsAreAccepted() throws {
        let greeting = try Greeting.parse(greetingBytes(major: 4, minor: 7))
        #expect(greeting.major == 4 && greeting.minor == 7)
    }

    @Test func paddingAndFillerAreNotInterpreted() throws {
        var bytes = greetingBytes(padding: hex("12 34 56 78 9a bc de f0"), signatureEnd: 0xFF)
        for index in 33..<64 { bytes[index] = 0xAA }
        #expect(try Greeting.parse(bytes).minor == 1)
    }

    // MARK: - Rejections

    @Test func httpIsRejectedAtTheFirstByte() {
        let http = ascii("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(throws: ZMTPError.notZMTP(firstByte: 0x47)) { try Greeting.checkPrefix(Array(http.prefix(1))) }
        #expect(throws: ZMTPError.notZMTP(firstByte: 0x47)) { try Greeting.checkPrefix(http) }
        #expect(
            ZMTPError.notZMTP(firstByte: 0x47).description
                == "first byte is 0x47 ('G'), not ZMTP's signature 0xff: the peer does not speak ZMTP"
        )
    }

    @Test func validPrefixesPassAtEveryLength() throws {
        let bytes = greetingBytes()
        for count in 0...Greeting.size { try Greeting.checkPrefix(Array(bytes.prefix(count))) }
    }

    @Test func zmtp10IsRejectedAtByte9() {
        let bytes = greetingBytes(signatureEnd: 0x7E)
        // Not before byte 9 arrives: the first 9 bytes could still be a ZMTP 3 greeting.
        #expect(throws: Never.self) { try Greeting.checkPrefix(Array(bytes.prefix(9))) }
        #expect(throws: ZMTPError.unversionedPeer(signatureEnd: 0x7E)) { try Greeting.checkPrefix(Array(bytes.prefix(10))) }
        #expect(throws: ZMTPError.unversionedPeer(signatureEnd: 0x7E)) { try Greeting.parse(bytes) }
    }

    @Test(arguments: [UInt8(0), 1, 2])
    func oldMajorVersionsAreRejectedAtByte10(major: UInt8) {
        let bytes = greetingBytes(major: major)
        #expect(throws: ZMTPError.unsupportedVersion(major: major)) { try Greeting.checkPrefix(Array(bytes.prefix(11))) }
        #expect(throws: ZMTPError.unsupportedVersion(major: major)) { try Greeting.parse(bytes) }
    }

    @Test(arguments: ["PLAIN", "CURVE", "null", "NULLX", "GSSAPI"])
    func otherMechanismsAreRejected(mechanism: String) {
        #expect(throws: ZMTPError.unsupportedMechanism(mechanism)) {
            try Greeting.parse(greetingBytes(mechanism: ascii(mechanism)))
        }
    }

    @Test func nullWithBytesAfterItsPaddingIsRejected() {
        // "NULL", a NUL, then junk: the field must be exactly NULL plus 16 NULs.
        let mechanism = ascii("NULL") + [0, 0x41]
        let error = ZMTPError.unsupportedMechanism("NULL\u{0}A")
        #expect(throws: error) { try Greeting.parse(greetingBytes(mechanism: mechanism)) }
        #expect(error.description == #"greeting asks for security mechanism "NULL\u{0}A"; only NULL is accepted"#)
    }

    @Test(arguments: [UInt8(1), 2, 0xFF])
    func asServerIsRejectedWithNull(asServer: UInt8) {
        #expect(throws: ZMTPError.asServerWithNull(asServer)) { try Greeting.parse(greetingBytes(asServer: asServer)) }
    }

    @Test func mechanismDescriptionEscapesPeerBytes() {
        let error = ZMTPError.unsupportedMechanism("EVIL\n\u{1B}\"")
        #expect(error.description == #"greeting asks for security mechanism "EVIL\u{a}\u{1b}\""; only NULL is accepted"#)
    }
}
