import RingfenceIO
import RingfenceZMTP
import Testing

@testable import RingfenceBroker

/// The data-phase reader: frames into commands and whole messages, caps from the header alone,
/// bodies read straight into place, oversized upstream messages skipped whole.
@Suite struct MessageReaderTests {
    static func frame(_ body: [UInt8], more: Bool = false, command: Bool = false) -> [UInt8] {
        FrameHeader.encode(size: body.count, more: more, command: command) + body
    }

    /// Feeds `bytes` in pieces of `step` (0: all at once), using direct reads when offered.
    static func read(_ bytes: [UInt8], step: Int, reader: inout MessageReader) throws -> [MessageReader.Event] {
        var events: [MessageReader.Event] = []
        var offset = 0
        while offset < bytes.count {
            if let target = reader.directTarget() {
                let count = min(target.count, bytes.count - offset, step == 0 ? Int.max : step)
                bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(rebasing: target[0..<count])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)]))
                }
                try reader.didReadDirectly(count, into: &events)
                offset += count
                continue
            }
            let count = step == 0 ? bytes.count - offset : min(step, bytes.count - offset)
            try bytes.withUnsafeBytes { raw in
                try reader.consume(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)]), into: &events)
            }
            offset += count
        }
        return events
    }

    static func messages(_ events: [MessageReader.Event]) -> [[[UInt8]]] {
        events.compactMap { event in
            if case .message(let frames) = event { return frames.map(\.array) }
            return nil
        }
    }

    @Test(arguments: [0, 1, 7, 4096])
    func multipartMessagesArriveWholeWhateverTheReadSizes(step: Int) throws {
        let big = (0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stream = Self.frame(Array("pickle".utf8), more: true) + Self.frame(big, more: true) + Self.frame([])
            + Subscription.subscribe(Array("t".utf8)).encodedFrame(peerMinor: 1)
            + Self.frame([1, 2, 3])
        var reader = MessageReader(maxFrameBytes: 1 << 20, maxMessageBytes: 1 << 20, skipsOversized: false)
        let events = try Self.read(stream, step: step, reader: &reader)
        #expect(Self.messages(events) == [[Array("pickle".utf8), big, []], [[1, 2, 3]]])
        #expect(events.count == 3)
        if case .command(let command) = events[1] {
            #expect(Subscription.fromCommand(command) == .subscribe(Array("t".utf8)))
        } else {
            Issue.record("expected the SUBSCRIBE between the messages, got \(events[1])")
        }
        #expect(reader.isAtMessageBoundary)
    }

    @Test func aFrameOverTheCapIsRefusedFromItsHeaderAlone() {
        // A LONG header declaring 2^62 bytes: nine bytes, no body.
        let header: [UInt8] = [0x02, 0x40, 0, 0, 0, 0, 0, 0, 0]
        var reader = MessageReader(maxFrameBytes: 512, maxMessageBytes: 512, skipsOversized: false)
        #expect(throws: MessageReader.Failure.self) { _ = try Self.read(header, step: 0, reader: &reader) }
    }

    @Test func aMessageOverTheCapAcrossFramesIsRefused() {
        let stream = Self.frame([UInt8](repeating: 1, count: 300), more: true) + Self.frame([UInt8](repeating: 2, count: 300))
        var reader = MessageReader(maxFrameBytes: 512, maxMessageBytes: 512, skipsOversized: false)
        #expect(throws: MessageReader.Failure.self) { _ = try Self.read(stream, step: 0, reader: &reader) }
    }

    @Test(arguments: [0, 1000])
    func anOversizedUpstreamMessageIsSkippedWholeAndTheNextOneDelivered(step: Int) throws {
        let stream = Self.frame(Array("head".utf8), more: true) + Self.frame([UInt8](repeating: 9, count: 5000), more: true)
            + Self.frame([7]) + Self.frame(Array("next".utf8))
        var reader = MessageReader(maxFrameBytes: 4096, maxMessageBytes: 4096, skipsOversized: true)
        let events = try Self.read(stream, step: step, reader: &reader)
        #expect(events.count == 2)
        if case .oversized(let bytes) = events.first { #expect(bytes >= 5004) } else { Issue.record("\(events)") }
        #expect(Self.messages(events) == [[Array("next".utf8)]])
    }

    /// A frame of 2^63 − 1 bytes from the engine is read past, never refused: the reader says
    /// so until the message ends (what the differential test tells apart from a frame pending).
    @Test func aReaderSaysWhileItSkipsAnOversizedMessage() throws {
        var reader = MessageReader(maxFrameBytes: 4096, maxMessageBytes: 4096, skipsOversized: true)
        #expect(!reader.isSkippingOversized)
        _ = try Self.read(Self.frame([UInt8](repeating: 1, count: 100), more: true), step: 0, reader: &reader)
        #expect(!reader.isSkippingOversized)
        _ = try Self.read([0x02] + withUnsafeBytes(of: UInt64(Int64.max).bigEndian) { Array($0) }, step: 0, reader: &reader)
        #expect(reader.isSkippingOversized)
        var other = MessageReader(maxFrameBytes: 4096, maxMessageBytes: 4096, skipsOversized: true)
        let events = try Self.read(Self.frame([UInt8](repeating: 9, count: 5000)) + Self.frame([7]), step: 0, reader: &other)
        #expect(!other.isSkippingOversized)
        #expect(Self.messages(events) == [[[7]]])
    }

    @Test func largeBodiesAreOfferedForDirectReads() throws {
        var reader = MessageReader(maxFrameBytes: 8 << 20, maxMessageBytes: 8 << 20, skipsOversized: false)
        var events: [MessageReader.Event] = []
        let header = FrameHeader.encode(size: 4 << 20, more: false, command: false)
        try header.withUnsafeBytes { try reader.consume($0, into: &events) }
        #expect(reader.directTarget()?.count == 4 << 20)
        try reader.didReadDirectly(4 << 20, into: &events)
        #expect(Self.messages(events).map { $0.map(\.count) } == [[4 << 20]])
        #expect(reader.directTarget() == nil)
    }
}
