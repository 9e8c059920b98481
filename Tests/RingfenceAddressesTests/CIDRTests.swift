import Testing

@testable import RingfenceAddresses

@Suite struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.7", "10.0.0.7"),
        ("10.0.0.7/32", "10.0.0.7"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("fd00::/64", "fd00::/64"),
        ("::/0", "::/0"),
        ("fd00::1/128", "fd00::1"),
        // Mapped blocks with a prefix of 96 or more are IPv4 blocks.
        ("::ffff:10.0.0.0/120", "10.0.0.0/24"),
        ("::ffff:10.0.0.9", "10.0.0.9"),
        ("::ffff:0:0/96", "0.0.0.0/0"),
    ])
    func parses(text: String, expected: String) throws {
        #expect(try CIDR(parsing: text).description == expected)
    }

    @Test(arguments: [
        ("10.0.0.0/33", AddressParseError.prefixOutOfRange(33, family: 4)),
        ("::/129", .prefixOutOfRange(129, family: 6)),
        ("::ffff:10.0.0.0/129", .prefixOutOfRange(129, family: 6)),
        ("300.1.1.1", .invalidAddress("300.1.1.1")),
        ("10.0.0.0/", .invalidPrefix("")),
        ("10.0.0.0/-1", .invalidPrefix("-1")),
        ("10.0.0.0/2x", .invalidPrefix("2x")),
        ("", .empty),
        ("fe80::1%eth0", .zoneNotAllowed("fe80::1%eth0")),
        ("10.0.0.5/24", .hostBitsSet("10.0.0.5/24", network: "10.0.0.0/24", host: "10.0.0.5/32")),
        ("fd00::1/64", .hostBitsSet("fd00::1/64", network: "fd00::/64", host: "fd00::1/128")),
    ])
    func refuses(text: String, expected: AddressParseError) {
        #expect(throws: expected) { try CIDR(parsing: text) }
    }

    @Test func messagesSayWhatIsWrong() {
        #expect(AddressParseError.prefixOutOfRange(33, family: 4).description == "prefix length 33 is out of range for IPv4 (0-32)")
        #expect(AddressParseError.invalidAddress("300.1.1.1").description.contains("'300.1.1.1' is not a valid"))
    }

    @Test func boundsOfABlock() throws {
        let block = try CIDR(parsing: "10.1.0.0/16")
        #expect(block.first == .v4(0x0a01_0000))
        #expect(block.last == .v4(0x0a01_ffff))
        let all6 = try CIDR(parsing: "::/0")
        #expect(all6.last == .v6(.max))
    }
}
