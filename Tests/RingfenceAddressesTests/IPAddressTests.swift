import Testing

@testable import RingfenceAddresses

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("10.0.0.1", IPAddress.v4(0x0a00_0001)),
        ("0.0.0.0", .v4(0)),
        ("255.255.255.255", .v4(0xffff_ffff)),
        ("::", .v6(0)),
        ("::1", .v6(1)),
        ("fd00::1", .v6(UInt128(0xfd00) << 112 | 1)),
        ("2001:db8:0:0:0:0:0:1", .v6(UInt128(0x2001_0db8) << 96 | 1)),
        // IPv4-mapped IPv6 is the IPv4 address.
        ("::ffff:10.0.0.1", .v4(0x0a00_0001)),
        ("::ffff:a00:1", .v4(0x0a00_0001)),
    ])
    func parses(text: String, expected: IPAddress) {
        #expect(IPAddress(text) == expected)
    }

    @Test(arguments: [
        "300.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "1.2.3.4 ", "", "a.b.c.d",
        "1.2.3.-4", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "::g", "12345::", "1.2.3.4/8",
    ])
    func refuses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func formatsCanonically() {
        #expect(IPAddress("10.1.2.3")?.description == "10.1.2.3")
        #expect(IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001")?.description == "2001:db8::1")
        #expect(IPAddress("::ffff:192.168.0.1")?.description == "192.168.0.1")
    }
}
