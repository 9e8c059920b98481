/// An incremental validator for the client→server byte stream of a PyTorch TCPStore (torch 2.x) connection.
///
/// A relay feeds every byte it reads from the client exactly once, in order, in chunks of any size, and
/// forwards to the server only the first `released` bytes of the stream. The gate guarantees that what
/// it releases is a prefix of well-formed requests that
/// - starts with VALIDATE carrying the right magic (which closes the libuv server's validation bypass),
/// - uses only known command codes, and
/// - declares no key, value or key count over `limits`.
///
/// Each byte is examined once (no re-parse from a request's start, unlike the libuv server), payloads
/// are released as they stream past and never copied, and at most one partial fixed-size field (≤ 8
/// bytes) is ever held back. After the first violation the gate stays failed. The wire format, the
/// backends' weaknesses and each rule: docs/tcpstore.md §2–§6.
public struct TCPStoreGate: Sendable {
    /// The caps this gate enforces.
    public let limits: TCPStoreLimits
    /// Total number of stream bytes, counted from the start of the connection, that may be forwarded to the server.
    ///
    /// It only grows, never past the bytes fed, and stops growing at the first violation.
    public private(set) var released: UInt64 = 0
    /// Whether a VALIDATE with the right magic has been seen, so the relay can enforce a handshake deadline.
    public private(set) var isValidated = false
    /// Number of complete requests seen (VALIDATE included); the relay logs it when it closes a
    /// connection for a violation or a timeout (`commands=`): 0 is a scanner, more a client gone wrong.
    public private(set) var commands: UInt64 = 0

    /// Where the parser is.
    private var state: TCPStoreGateState = .expectingCode
    /// Stream bytes examined so far; `consumed - released` is what is held back.
    private var consumed: UInt64 = 0
    /// The little-endian value of the fixed field being read, accumulated so far.
    private var fieldValue: UInt64 = 0
    /// How many bytes of the fixed field being read have arrived.
    private var fieldFilled = 0
    /// `limits` as unsigned caps, computed once.
    private let keyCap: UInt64, valueCap: UInt64, countCap: UInt64

    /// Creates a gate at the start of a connection.
    public init(limits: TCPStoreLimits) {
        self.limits = limits
        keyCap = limits.keyCap
        valueCap = limits.valueCap
        countCap = limits.countCap
    }

    /// Whether a request has begun and is not complete, so the relay can enforce a partial-command deadline.
    ///
    /// False between requests and once the gate has failed (nothing more will be forwarded then).
    public var isMidCommand: Bool {
        switch state {
        case .readingField, .streaming: true
        case .expectingCode, .failed: false
        }
    }

    /// The violation that failed the gate, or nil while the stream is well-formed.
    public var violation: TCPStoreViolation? {
        if case .failed(let violation) = state { violation } else { nil }
    }

    /// Feeds the next bytes of the client's stream.
    ///
    /// Returns nil, or the violation; after a violation the gate stays failed: further feeds return the
    /// same violation and `released` does not grow. Runs in time linear in `bytes.count`.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> TCPStoreViolation? {
        var index = 0
        while index < bytes.count {
            switch state {
            case .failed(let violation):
                return violation
            case .expectingCode:
                let code = bytes[index]
                index += 1
                consumed += 1
                if let violation = beginCommand(code: code) { return fail(violation) }
            case .readingField(let field, let plan):
                let taken = accumulate(field, from: bytes, at: index)
                index += taken
                consumed += UInt64(taken)
                if fieldFilled == field.width, let violation = finish(field, plan) { return fail(violation) }
            case .streaming(let remaining, let plan):
                let taken = min(remaining, UInt64(bytes.count - index))
                index += Int(taken)
                consumed += taken
                released = consumed
                if taken == remaining {
                    advance(plan)
                } else {
                    state = .streaming(remaining: remaining - taken, plan)
                }
            }
        }
        return violation
    }

    /// Feeds the next bytes of the client's stream from an array; see `feed(_:)` for buffers.
    public mutating func feed(_ bytes: [UInt8]) -> TCPStoreViolation? {
        bytes.withUnsafeBytes { feed($0) }
    }

    // MARK: - Steps

    /// Starts a request from its code byte, releasing the byte unless it opens the connection's first VALIDATE.
    private mutating func beginCommand(code: UInt8) -> TCPStoreViolation? {
        guard isValidated else {
            // Nothing of the first request is released until its magic has been checked.
            guard code == TCPStoreCommand.validate.rawValue else { return .notValidateFirst(code: code) }
            advance(TCPStorePlan(command: .validate))
            return nil
        }
        guard let command = TCPStoreCommand(rawValue: code) else { return .unknownCommand(code: code) }
        released = consumed
        advance(TCPStorePlan(command: command))
        return nil
    }

    /// Adds up to the rest of `field`'s bytes from `bytes[index...]` to the accumulator; returns how many it took.
    private mutating func accumulate(_ field: TCPStoreField, from bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let available = bytes.count - index
        if fieldFilled == 0, available >= field.width {
            // The common case: the whole field is in this chunk.
            fieldValue = field.width == 8
                ? UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                : UInt64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt32.self)))
            fieldFilled = field.width
            return field.width
        }
        let taken = min(field.width - fieldFilled, available)
        for offset in 0..<taken {
            fieldValue |= UInt64(bytes[index + offset]) << UInt64(8 * (fieldFilled + offset))
        }
        fieldFilled += taken
        return taken
    }

    /// Checks a complete fixed field, releases it if accepted, and moves on to its payload or the next field.
    private mutating func finish(_ field: TCPStoreField, _ plan: TCPStorePlan) -> TCPStoreViolation? {
        let value = fieldValue
        fieldValue = 0
        fieldFilled = 0
        var plan = plan
        switch field {
        case .magic:
            let magic = UInt32(truncatingIfNeeded: value)
            guard magic == TCPStoreCommand.validationMagic else { return .wrongMagic(magic) }
            isValidated = true
        case .key, .value:
            let cap = field == .key ? keyCap : valueCap
            guard value <= cap else {
                return field == .key ? .keyTooLong(value, cap: cap) : .valueTooLong(value, cap: cap)
            }
            if value > 0 {
                released = consumed
                state = .streaming(remaining: value, plan)
                return nil
            }
        case .count:
            guard value <= countCap else { return .tooManyKeys(value, cap: countCap, command: plan.command) }
            plan.beginEntries(value)
        case .int64, .nonce:
            break
        }
        released = consumed
        advance(plan)
        return nil
    }

    /// Moves to the plan's next field, or completes the request when none is left.
    private mutating func advance(_ plan: TCPStorePlan) {
        var plan = plan
        if let field = plan.next() {
            state = .readingField(field, plan)
        } else {
            commands += 1
            state = .expectingCode
        }
    }

    /// Fails the gate for good.
    private mutating func fail(_ violation: TCPStoreViolation) -> TCPStoreViolation {
        state = .failed(violation)
        return violation
    }
}
