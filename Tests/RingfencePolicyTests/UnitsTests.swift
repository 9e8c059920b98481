import Testing

@testable import RingfencePolicy

@Suite struct UnitsTests {
    @Test(arguments: [
        ("0", 0), ("512B", 512), ("512", 512), ("4KiB", 4096), ("4 KiB", 4096), ("256MiB", 256 << 20), ("2GiB", 2 << 30),
    ])
    func sizes(text: String, bytes: Int) throws {
        #expect(try ByteSize.parse(text).get() == ByteSize(bytes: bytes))
    }

    @Test(arguments: ["", "MiB", "1.5MiB", "10MB", "10 mb", "-1", "1TiB", "99999999999GiB"])
    func badSizes(text: String) {
        #expect(throws: PolicyValueError.self) { try ByteSize.parse(text).get() }
    }

    @Test func sizesPrintInTheirLargestExactUnit() {
        #expect(ByteSize.mebibytes(256).description == "256MiB")
        #expect(ByteSize(bytes: 1536 << 10).description == "1536KiB")
        #expect(ByteSize(bytes: 100).description == "100B")
    }

    @Test(arguments: [
        ("200us", Duration.microseconds(200)), ("250ms", .milliseconds(250)), ("5s", .seconds(5)), ("2m", .seconds(120)), ("0s", .zero),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try PolicyDuration.parse(text).get() == expected)
        #expect(PolicyDuration.format(expected) == (text == "0s" ? "0s" : text))
    }

    @Test(arguments: ["5", "5h", "5ns", "1.5s", "s", "", "-5s", "5 s"])
    func badDurations(text: String) {
        #expect(throws: PolicyValueError.self) { try PolicyDuration.parse(text).get() }
    }

    @Test func endpoints() throws {
        #expect(try Endpoint.parse("127.0.0.1:29500").get() == Endpoint(host: "127.0.0.1", port: 29500))
        #expect(try Endpoint.parse("[::1]:5557").get().description == "[::1]:5557")
        #expect(try Endpoint.parse("store.local:1").get().host == "store.local")
        for bad in ["::1:5557", "host:", "host:0", "host:70000", ":5", "[nothost]:5"] {
            #expect(throws: PolicyValueError.self) { try Endpoint.parse(bad).get() }
        }
    }
}
