import RingfenceTestSupport
import Testing

@testable import RingfenceZMTP

/// Frame headers: both forms, partial input, every rejection from the header alone, round trips (docs/zmtp.md §2).
@Suite struct FrameHeaderTests {
    private static let cap: UInt64 = 64 << 20

    @Test func shortAndLongForms() throws {
        #expect(try FrameHeader.parse(hex("00 00")) == FrameHeader(more: false, isCommand: false, size: 0, encodedCount: 2))
        #expect(try FrameHeader.parse(hex("01 ff")) == FrameHeader(more: true, isCommand: false, size: 255, encodedCount: 2))
        #expect(try FrameHeader.parse(hex("04 19")) == FrameHeader(more: false, isCommand: true, size: 25, encodedCount: 2))
        #expect(
            try FrameHeader.parse(hex("03 00 00 00 00 00 00 01 2c"))
                == FrameHeader(more: true, isCommand: false, size: 300, encodedCount: 9)
        )
        // The long form is accepted for small sizes too, as libzmq's decoder does.
        #expect(
            try FrameHeader.parse(hex("06 00 00 00 00 00 00 00 05"))
                == FrameHeader(more: false, isCommand: true, size: 5, encodedCount: 9)
        )
    }

    @Test func bytesAfterTheHeaderAreIgnored() throws {
        #expect(try FrameHeader.parse(hex("00 03 61 62 63 01"))?.size == 3)
    }

    @Test func partialHeadersNeedMoreBytes() throws {
        #expect(try FrameHeader.parse([]) == nil)
        #expect(try FrameHeader.parse(hex("00")) == nil)
        let long = hex("02 00 00 00 01 00 00 00 00")
        for count in 1..<9 { #expect(try FrameHeader.parse(Array(long.prefix(count))) == nil) }
        #expect(try FrameHeader.parse(long, maxSize: .max)?.size == 1 << 32)
    }

    @Test func multipartExample() throws {
        // A 2-frame message: flags 0x1 size 10, then flags 0x2 size 300.
        let first = [UInt8](repeating: 0x41, count: 10), second = [UInt8](repeating: 0x42, count: 300)
        let stream = hex("01 0a") + first + hex("02 00 00 00 00 00 00 01 2c") + second
        var offset = 0
        var frames: [(FrameHeader, [UInt8])] = []
        while offset < stream.count {
            let header = try #require(try FrameHeader.parse(Array(stream[offset...])))
            let start = offset + header.encodedCount, end = start + Int(header.size)
            frames.append((header, Array(stream[start..<end])))
            offset = end
        }
        #expect(frames.count == 2)
        #expect(frames[0].0 == FrameHeader(more: true, isCommand: false, size: 10))
        #expect(frames[0].1 == first)
        #expect(frames[1].0 == FrameHeader(more: false, isCommand: false, size: 300))
        #expect(frames[1].1 == second)
        #expect(FrameHeader.encode(size: 10, more: true, command: false) == hex("01 0a"))
        #expect(FrameHeader.encode(size: 300, more: false, command: false) == hex("02 00 00 00 00 00 00 01 2c"))
    }

    // MARK: - Rejections

    @Test(arguments: [UInt8(0x08), 0x10, 0x20, 0x40, 0x80, 0xFF, 0x0C])
    func reservedBitsAreRejectedFromTheFirstByte(flags: UInt8) {
        #expect(throws: ZMTPError.reservedFlagBits(flags: flags)) { try FrameHeader.parse([flags]) }
    }

    @Test(arguments: [UInt8(0x05), 0x07])
    func moreOnACommandIsRejected(flags: UInt8) {
        #expect(throws: ZMTPError.moreOnCommand) { try FrameHeader.parse([flags]) }
    }

    @Test func hugeSizeIsRejectedFromTheNineHeaderBytes() {
        let header = hex("02 40 00 00 00 00 00 00 00")  // 2^62
        let error = ZMTPError.frameTooLarge(size: 1 << 62, cap: Self.cap)
        #expect(throws: error) { try FrameHeader.parse(header, maxSize: Self.cap) }
        #expect(error.description == "frame of 4611686018427387904 bytes is over the 67108864-byte cap")
    }

    @Test func capIsInclusive() throws {
        #expect(try FrameHeader.parse(hex("00 10"), maxSize: 16)?.size == 16)
        #expect(throws: ZMTPError.frameTooLarge(size: 17, cap: 16)) { try FrameHeader.parse(hex("00 11"), maxSize: 16) }
    }

    @Test(arguments: [UInt64(1) << 63, (1 << 63) + 1, .max])
    func sizesOf2To63AndMoreAreRejected(size: UInt64) {
        var header: [UInt8] = [0x02]
        withUnsafeBytes(of: size.bigEndian) { header.append(contentsOf: $0) }
        #expect(throws: ZMTPError.sizeOutOfRange(size)) { try FrameHeader.parse(header, maxSize: .max) }
    }

    @Test func largestLegalSizeParsesWithoutACap() throws {
        #expect(try FrameHeader.parse(hex("02 7f ff ff ff ff ff ff ff"), maxSize: .max)?.size == FrameHeader.maxSize)
    }

    // MARK: - Round trips

    @Test(arguments: [0, 1, 255, 256, 65_535, 1 << 20, 1 << 32, Int(Int64.max)])
    func boundarySizesRoundTrip(size: Int) throws {
        for (more, command) in [(false, false), (true, false), (false, true)] {
            let bytes = FrameHeader.encode(size: size, more: more, command: command)
            #expect(bytes.count == (size <= 255 ? 2 : 9))
            let header = try #require(try FrameHeader.parse(bytes, maxSize: .max))
            #expect(header == FrameHeader(more: more, isCommand: command, size: UInt64(size)))
            #expect(header.encodedCount == bytes.count)
            #expect(header.encoded() == bytes)
        }
    }

    @Test(arguments: 0..<20)
    func randomSizesRoundTrip(seed: Int) throws {
        var random = SeededRandom(seed: UInt64(seed))
        for _ in 0..<200 {
            let size = Int.random(in: 0...(1 << Int.random(in: 0...62, using: &random)), using: &random)
            let more = Bool.random(using: &random), command = !more && Bool.random(using: &random)
            var bytes = random.bytes(Int.random(in: 0...3, using: &random))
            let prefix = bytes.count
            FrameHeader.encode(size: size, more: more, command: command, into: &bytes)
            let header = try FrameHeader.parse(Array(bytes[prefix...]), maxSize: .max)
            #expect(header == FrameHeader(more: more, isCommand: command, size: UInt64(size)), "seed \(seed), size \(size)")
        }
    }
}
