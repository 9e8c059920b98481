import Testing

@testable import RingfenceTCPStore

/// Payloads stream through without being held, and parsing stays linear in the stream length.
@Suite struct TCPStoreGateStreamingTests {
    @Test func fourMebibyteValueIsReleasedAsItArrives() {
        let valueSize = 4 << 20
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.set("/big", [UInt8](repeating: 0x5A, count: valueSize))
        let headerSize = 5 + 1 + 8 + 4 + 8
        #expect(encoder.bytes.count == headerSize + valueSize)

        let limits = TCPStoreLimits(maxKeyBytes: 64, maxValueBytes: valueSize, maxKeys: 1)
        let result = run(encoder.bytes, limits: limits, chunking: .fixed(64 << 10))
        #expect(result.outcome.violation == nil)
        // The first chunk holds the headers and the start of the value: all of it is released.
        #expect(result.releasedAfterChunk.first! > UInt64(headerSize))
        // Every chunk is released in full as soon as it is fed: nothing is buffered.
        for (index, released) in result.releasedAfterChunk.enumerated() {
            #expect(released == min(UInt64((index + 1) * (64 << 10)), UInt64(encoder.bytes.count)))
        }
        #expect(result.releasedAfterChunk.count == 65)
        #expect(result.outcome.released == UInt64(encoder.bytes.count))
        #expect(completedRequests(in: encoder.bytes, limits: limits)[.set] == 1)
    }

    @Test func partialValueIsMidCommandAndReleased() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.append("/log", [UInt8](repeating: 1, count: 1000))
        var gate = TCPStoreGate(limits: roomyLimits)
        #expect(gate.feed(Array(encoder.bytes[0..<500])) == nil)
        #expect(gate.released == 500 && gate.isMidCommand)
        #expect(gate.feed(Array(encoder.bytes[500...])) == nil)
        #expect(gate.released == UInt64(encoder.bytes.count) && !gate.isMidCommand)
    }

    @Test func twoHundredThousandSetsInOneBuffer() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        for index in 0..<200_000 { encoder.set("/k\(index % 1000)", [UInt8(truncatingIfNeeded: index)]) }
        var gate = TCPStoreGate(limits: roomyLimits)
        #expect(gate.feed(encoder.bytes) == nil)
        #expect(gate.released == UInt64(encoder.bytes.count))
        #expect(gate.commands == 200_001 && completedRequests(in: encoder.bytes, limits: roomyLimits)[.set] == 200_000)
    }

    @Test func largeMultiSetInSmallReadsIsLinear() {
        // The shape that costs the libuv server quadratic time: one 60k-entry MULTI_SET in 4 KiB reads.
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.multiSet((0..<60_000).map { ("/key/\($0)", [UInt8](repeating: 3, count: 100)) })
        let limits = TCPStoreLimits(maxKeyBytes: 8192, maxValueBytes: 8 << 20, maxKeys: 131_072)
        let result = run(encoder.bytes, limits: limits, chunking: .fixed(4096))
        #expect(result.outcome.violation == nil)
        #expect(result.outcome.released == UInt64(encoder.bytes.count))
        #expect(completedRequests(in: encoder.bytes, limits: limits)[.multiSet] == 1)
        #expect(result.maxHeld <= 8)
    }
}
