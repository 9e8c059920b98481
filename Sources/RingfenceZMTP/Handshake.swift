/// The NULL-mechanism handshake of one ZMTP connection, for either side, as an explicit state machine
/// (docs/zmtp.md §1, §3).
///
/// `greeting` → `ready` → `done`: the peer's 64-byte greeting is read, then its READY command, which must
/// carry a `Socket-Type` that `localType` accepts. Bytes after the READY belong to the data phase and
/// are left to the caller.
///
/// Send `opening` (our greeting and READY together) as soon as the connection opens, whichever side
/// connected: libzmq sends its greeting in steps and waits for ours, so a side that waited for a whole
/// greeting would deadlock, and libzmq 4.3.4 sends its READY without waiting in either role (docs/zmtp.md §1,
/// §3). Send data only once `state` is `done`.
///
/// Bytes are held only while a greeting or READY is split across `feed` calls (at most 64 bytes, or one
/// READY frame of up to `maxCommandBytes` plus its header). After an error the handshake stays failed.
public struct Handshake: Sendable {
    /// Where the handshake is.
    public enum State: Hashable, Sendable {
        /// Reading the peer's 64-byte greeting.
        case greeting
        /// The greeting is valid; reading the peer's READY command.
        case ready
        /// The peer's READY is valid: the next byte from the peer starts the data phase.
        case done
    }

    /// Our socket type, announced in our READY and checked against the peer's.
    let localType: SocketType
    /// The minor version we advertise: 1 (ZMTP 3.1) or 0 (3.0).
    let localMinor: UInt8
    /// The largest command body accepted before the handshake is done (a READY is about 25 bytes).
    let maxCommandBytes: Int
    /// The bytes to send at once when the connection opens: our 64-byte greeting, then our READY frame.
    public let opening: [UInt8]
    /// Where the handshake is.
    public private(set) var state: State = .greeting
    /// The peer's minor version, once its greeting has been read.
    private(set) var peerMinor: UInt8?
    /// The peer's major version (3, or more from a newer peer), once its greeting has been read.
    private(set) var peerMajor: UInt8?
    /// The peer's socket type, once its READY has been validated.
    public private(set) var peerType: SocketType?
    /// The error that failed the handshake, if one did; `feed` throws it again.
    private(set) var failure: ZMTPError?
    /// A greeting or READY frame that is split across `feed` calls, so far.
    private var pending: [UInt8] = []

    /// Starts a handshake.
    /// - Parameters:
    ///   - localType: Our socket type (e.g. `.xpub` towards subscribers, `.xsub` towards a publisher).
    ///   - minor: The minor version to advertise; 0 makes a libzmq peer use the 3.0 subscription form.
    ///   - maxCommandBytes: The cap on a command body during the handshake (docs/zmtp.md §8.1).
    public init(localType: SocketType, minor: UInt8 = 1, maxCommandBytes: Int = 4096) {
        precondition(maxCommandBytes >= 0, "maxCommandBytes cannot be negative")
        self.localType = localType
        localMinor = minor
        self.maxCommandBytes = maxCommandBytes
        opening = Greeting.encoded(minor: minor) + Command.ready(socketType: localType).encodedFrame()
    }

    /// The minor version both sides speak, min(ours, theirs), once the peer's greeting has been read.
    ///
    /// Use it to pick a subscription's wire form (`Subscription.encodedFrame(peerMinor:)`) and whether
    /// to send heartbeats. A peer with a major version above 3 counts as speaking our minor.
    public var negotiatedMinor: UInt8? {
        guard let peerMajor, let peerMinor else { return nil }
        return peerMajor > 3 ? localMinor : min(localMinor, peerMinor)
    }

    /// Feeds bytes received from the peer, in order, in chunks of any size.
    ///
    /// - Parameter bytes: The next received bytes.
    /// - Returns: How many bytes were consumed: all of them until the end of the peer's READY frame,
    ///   never a byte past it (those belong to the data phase and are the caller's); 0 once `done`.
    /// - Throws: `ZMTPError`, as soon as it is known: a non-ZMTP prefix (from the first byte), a bad
    ///   greeting, a frame header error, a command over `maxCommandBytes` (from its header), a data frame
    ///   before READY (from its first byte), a first command other than READY, a malformed READY, an
    ///   ERROR from the peer (`.peerError`), a READY without `Socket-Type` (we require it, unlike libzmq)
    ///   or with several, and a peer type `localType` does not accept (`.socketTypeMismatch`).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> Int {
        if let failure { throw failure }
        do throws(ZMTPError) {
            var consumed = 0
            while consumed < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
                switch state {
                case .greeting: consumed += try feedGreeting(rest)
                case .ready: consumed += try feedReady(rest)
                case .done: return consumed
                }
            }
            return consumed
        } catch {
            failure = error
            pending = []
            throw error
        }
    }

    /// Feeds bytes received from the peer from an array; see `feed(_:)` for buffers.
    mutating func feed(_ bytes: [UInt8]) throws(ZMTPError) -> Int {
        try withBytes(bytes) { bytes throws(ZMTPError) in try feed(bytes) }
    }

    // MARK: - Steps

    /// Reads greeting bytes from the start of `bytes` (not empty); returns how many it took.
    private mutating func feedGreeting(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> Int {
        if pending.isEmpty, bytes.count >= Greeting.size {
            accept(try Greeting.parse(UnsafeRawBufferPointer(rebasing: bytes[..<Greeting.size])))
            return Greeting.size
        }
        let taken = min(Greeting.size - pending.count, bytes.count)
        pending.append(contentsOf: bytes[..<taken])
        try withBytes(pending) { pending throws(ZMTPError) in try Greeting.checkPrefix(pending) }
        if pending.count == Greeting.size {
            let greeting = try withBytes(pending) { pending throws(ZMTPError) in try Greeting.parse(pending) }
            pending = []
            accept(greeting)
        }
        return taken
    }

    /// Records a valid greeting and moves on to READY.
    private mutating func accept(_ greeting: Greeting) {
        peerMajor = greeting.major
        peerMinor = greeting.minor
        state = .ready
    }

    /// Reads READY frame bytes from the start of `bytes` (not empty); returns how many it took.
    private mutating func feedReady(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> Int {
        if pending.isEmpty {
            // The common case: the whole frame is in this chunk, so nothing is copied.
            let need = try readyFrameNeed(bytes)
            if let header = need.header, bytes.count >= need.count {
                try finishReady(UnsafeRawBufferPointer(rebasing: bytes[..<need.count]), header: header)
                return need.count
            }
        }
        var taken = 0
        while true {
            let need = try withBytes(pending) { pending throws(ZMTPError) in try readyFrameNeed(pending) }
            if let header = need.header, pending.count == need.count {
                let frame = pending
                pending = []
                try withBytes(frame) { frame throws(ZMTPError) in try finishReady(frame, header: header) }
                return taken
            }
            guard taken < bytes.count else { return taken }
            let count = min(need.count - pending.count, bytes.count - taken)
            pending.append(contentsOf: bytes[taken..<taken + count])
            taken += count
        }
    }

    /// What the READY frame at the start of `bytes` needs: its header once complete, and the total length
    /// to read next (the whole frame's once the header is known, else the header's).
    private func readyFrameNeed(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> (header: FrameHeader?, count: Int) {
        guard let flags = bytes.first else { return (nil, 1) }
        if flags & FrameHeader.reservedFlags == 0, flags & FrameHeader.commandFlag == 0 { throw .dataBeforeReady }
        let header: FrameHeader?
        do throws(ZMTPError) {
            header = try FrameHeader.parse(bytes, maxSize: UInt64(maxCommandBytes))
        } catch {
            if case .frameTooLarge(let size, let cap) = error { throw .commandTooLarge(size: size, cap: cap) }
            throw error
        }
        guard let header else { return (nil, flags & FrameHeader.longFlag != 0 ? 9 : 2) }
        return (header, header.encodedCount + Int(header.size))
    }

    /// Validates the peer's complete first command frame; on success the handshake is done.
    private mutating func finishReady(_ frame: UnsafeRawBufferPointer, header: FrameHeader) throws(ZMTPError) {
        let command = try Command.parse(UnsafeRawBufferPointer(rebasing: frame[header.encodedCount...]))
        switch command {
        case .ready(let properties):
            let socketTypes = properties.filter { $0.hasName(Command.socketTypeProperty) }
            guard let property = socketTypes.first else { throw .missingSocketType }
            guard socketTypes.count == 1 else {
                throw .malformedCommand(command: "READY", problem: "Socket-Type appears \(socketTypes.count) times")
            }
            let type = SocketType(rawValue: String(decoding: property.value, as: UTF8.self))
            guard localType.accepts(type) else { throw .socketTypeMismatch(local: localType, peer: type) }
            peerType = type
            state = .done
        case .error(let reason):
            throw .peerError(reason: reason)
        default:
            throw .expectedReady(got: command.name)
        }
    }
}

/// Runs `body` on the bytes of `array`, keeping its typed error (`Array.withUnsafeBytes` only rethrows).
private func withBytes<Result>(
    _ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ZMTPError) -> Result
) throws(ZMTPError) -> Result {
    try array.withUnsafeBytes { bytes in Swift.Result { () throws(ZMTPError) in try body(bytes) } }.get()
}
