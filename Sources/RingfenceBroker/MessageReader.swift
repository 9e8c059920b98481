import RingfenceIO
import RingfenceZMTP

/// Turns the bytes of a ZMTP connection's data phase into commands and whole messages, with
/// caps checked from each frame's header, before its body is read or allocated.
///
/// Bodies go into `SharedBytes` of exactly their size; what the current read holds is copied,
/// and the rest of a large body can be read by the connection straight into place
/// (`directTarget`), so a 4 MiB frame costs one copy out of the kernel. A message over
/// `maxMessageBytes` is either refused (subscribers: the reader throws) or, with
/// `skipsOversized`, read past without being kept and reported as `.oversized` (upstream: the
/// broker decides what its subscribers lose). An explicit state machine; confined to a loop.
struct MessageReader {
    enum Event {
        case command(Command)
        case message([SharedBytes])
        /// A message over the cap was read past; `bytes` is its size as far as it was read.
        case oversized(bytes: Int)
    }

    /// Why a peer's data phase was refused.
    enum Failure: Error, CustomStringConvertible {
        case zmtp(ZMTPError)
        case messageTooLarge(size: Int, cap: Int)

        var description: String {
            switch self {
            case .zmtp(let error): "\(error)"
            case .messageTooLarge(let size, let cap): "message of at least \(size) bytes is over the \(cap)-byte cap"
            }
        }
    }

    private enum State {
        /// Waiting for a frame header; `pending` holds its first bytes.
        case header
        /// Reading a body into `frame`, of which `filled` bytes are in.
        case body(header: FrameHeader, frame: SharedBytes, filled: Int)
        /// Reading past `remaining` bytes of an oversized message's frame.
        case skipping(header: FrameHeader, remaining: UInt64)
    }

    let maxFrameBytes: UInt64
    let maxMessageBytes: Int
    let skipsOversized: Bool
    /// The size a frame header may declare: the frame cap, or any legal size when oversized
    /// messages are read past rather than refused.
    private var headerCap: UInt64 { skipsOversized ? UInt64(Int64.max) : maxFrameBytes }
    private var state = State.header
    private var pending: [UInt8] = []
    /// Frames of the message in progress.
    private var frames: [SharedBytes] = []
    private var messageBytes = 0
    /// The message in progress is over the cap and being skipped.
    private var oversized = false

    init(maxFrameBytes: UInt64, maxMessageBytes: Int, skipsOversized: Bool) {
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
        self.skipsOversized = skipsOversized
        pending.reserveCapacity(9)
    }

    /// Consumes `bytes` whole, appending what they complete to `events`.
    mutating func consume(_ bytes: UnsafeRawBufferPointer, into events: inout [Event]) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            switch state {
            case .header:
                offset += try readHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...]), into: &events)
            case .body(let header, let frame, let filled):
                let count = min(frame.count - filled, bytes.count - offset)
                frame.withUnsafeMutableBytes { target in
                    UnsafeMutableRawBufferPointer(rebasing: target[filled..<(filled + count)])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
                }
                offset += count
                try advanceBody(header: header, frame: frame, filled: filled + count, into: &events)
            case .skipping(let header, let remaining):
                let count = Int(min(remaining, UInt64(bytes.count - offset)))
                offset += count
                advanceSkip(header: header, remaining: remaining - UInt64(count), into: &events)
            }
        }
    }

    /// Where the connection may read the rest of a large body straight into place, or nil.
    func directTarget() -> UnsafeMutableRawBufferPointer? {
        guard case .body(_, let frame, let filled) = state, frame.count - filled >= 16 << 10 else { return nil }
        return frame.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[filled...]) }
    }

    /// `count` bytes were read into `directTarget()`'s buffer.
    mutating func didReadDirectly(_ count: Int, into events: inout [Event]) throws(Failure) {
        guard case .body(let header, let frame, let filled) = state else { return }
        try advanceBody(header: header, frame: frame, filled: filled + count, into: &events)
    }

    /// Whether the reader is reading past a message over the cap (`skipsOversized`): what the
    /// differential test tells apart from waiting for an ordinary frame (docs/reliability.md).
    var isSkippingOversized: Bool { oversized }

    /// Whether the reader is between messages (nothing of a message read).
    var isAtMessageBoundary: Bool {
        if case .header = state { return pending.isEmpty && frames.isEmpty && !oversized }
        return false
    }

    private mutating func readHeader(_ bytes: UnsafeRawBufferPointer, into events: inout [Event]) throws(Failure) -> Int {
        // Fast path: the whole header is in this read.
        if pending.isEmpty {
            let header: FrameHeader?
            do throws(ZMTPError) {
                header = try FrameHeader.parse(bytes, maxSize: headerCap)
            } catch {
                throw .zmtp(error)
            }
            if let header {
                try begin(header, into: &events)
                return header.encodedCount
            }
            pending.append(contentsOf: bytes)
            return bytes.count
        }
        // The header straddles reads: gather at most its 9 bytes.
        let before = pending.count
        let take = min(9 - before, bytes.count)
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
        let maxSize = headerCap
        let parsed = pending.withUnsafeBytes { raw in
            Result { () throws(ZMTPError) in try FrameHeader.parse(raw, maxSize: maxSize) }
        }
        let header: FrameHeader?
        switch parsed {
        case .success(let value): header = value
        case .failure(let error): throw .zmtp(error)
        }
        guard let header else { return take }
        pending.removeAll(keepingCapacity: true)
        try begin(header, into: &events)
        return header.encodedCount - before
    }

    private mutating func begin(_ header: FrameHeader, into events: inout [Event]) throws(Failure) {
        if !header.isCommand {
            let total = UInt64(messageBytes) + header.size
            if oversized || total > UInt64(maxMessageBytes) || header.size > maxFrameBytes {
                guard skipsOversized else {
                    throw .messageTooLarge(size: Int(clamping: total), cap: maxMessageBytes)
                }
                if !oversized {
                    oversized = true
                    frames.removeAll()
                }
                messageBytes = Int(clamping: total)
                state = .skipping(header: header, remaining: header.size)
                if header.size == 0 { advanceSkip(header: header, remaining: 0, into: &events) }
                return
            }
        } else if header.size > maxFrameBytes {
            throw .zmtp(.commandTooLarge(size: header.size, cap: maxFrameBytes))
        }
        let frame = SharedBytes(count: Int(header.size), pool: .shared)
        state = .body(header: header, frame: frame, filled: 0)
        if header.size == 0 { try advanceBody(header: header, frame: frame, filled: 0, into: &events) }
    }

    private mutating func advanceBody(header: FrameHeader, frame: SharedBytes, filled: Int, into events: inout [Event]) throws(Failure) {
        guard filled == frame.count else {
            state = .body(header: header, frame: frame, filled: filled)
            return
        }
        state = .header
        if header.isCommand {
            let parsed = frame.withUnsafeBytes { raw in Result { () throws(ZMTPError) in try Command.parse(raw) } }
            switch parsed {
            case .success(let command): events.append(.command(command))
            case .failure(let error): throw .zmtp(error)
            }
            return
        }
        frames.append(frame)
        messageBytes += frame.count
        if !header.more {
            events.append(.message(frames))
            frames = []
            messageBytes = 0
        }
    }

    private mutating func advanceSkip(header: FrameHeader, remaining: UInt64, into events: inout [Event]) {
        guard remaining == 0 else {
            state = .skipping(header: header, remaining: remaining)
            return
        }
        state = .header
        if !header.more {
            events.append(.oversized(bytes: messageBytes))
            oversized = false
            messageBytes = 0
        }
    }
}
