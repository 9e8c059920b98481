/// Why a `TCPStoreGate` stopped releasing a client's bytes: which rule broke, and a log-friendly sentence.
///
/// A violation is final for its connection: the relay is expected to close it, and the gate keeps
/// returning the same violation for any further bytes.
public struct TCPStoreViolation: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rule that was broken, with a short stable name for logs and metrics.
    public enum Rule: String, Hashable, Sendable {
        /// The first command of the connection was not VALIDATE.
        case notValidateFirst = "validate-first"
        /// A VALIDATE command carried a magic other than 0x3C85F7CE.
        case wrongMagic = "validate-magic"
        /// A command code byte is not one of the TCPStore commands (0 through 18).
        case unknownCommand = "unknown-command"
        /// A key's declared length is over `TCPStoreLimits.maxKeyBytes`.
        case keyTooLong = "key-size"
        /// A value's declared length is over `TCPStoreLimits.maxValueBytes`.
        case valueTooLong = "value-size"
        /// A CHECK, WAIT, MULTI_GET or MULTI_SET key count is over `TCPStoreLimits.maxKeys`.
        case tooManyKeys = "key-count"
    }

    /// The rule that was broken.
    public var rule: Rule
    /// A sentence describing the offending field, e.g. "key of 9000 bytes is over the cap of 4096".
    public var description: String

    /// Creates a violation from its rule and sentence (the gate builds its own; this is for relays and tests).
    public init(rule: Rule, description: String) {
        self.rule = rule
        self.description = description
    }
}

extension TCPStoreViolation {
    /// The first command byte was `code`, not VALIDATE (0).
    static func notValidateFirst(code: UInt8) -> TCPStoreViolation {
        let what = TCPStoreCommand(rawValue: code).map { "\($0.name) (\(code))" }
            ?? "\(hex(code, digits: 2)) (not a TCPStore command)"
        return TCPStoreViolation(rule: .notValidateFirst, description: "first command is \(what), not VALIDATE")
    }

    /// A VALIDATE carried `magic` instead of `TCPStoreCommand.validationMagic`.
    static func wrongMagic(_ magic: UInt32) -> TCPStoreViolation {
        TCPStoreViolation(
            rule: .wrongMagic,
            description: "VALIDATE magic \(hex(magic, digits: 8)) is not \(hex(TCPStoreCommand.validationMagic, digits: 8))"
        )
    }

    /// A command byte that names no TCPStore command.
    static func unknownCommand(code: UInt8) -> TCPStoreViolation {
        TCPStoreViolation(rule: .unknownCommand, description: "command code \(hex(code, digits: 2)) is not a TCPStore command")
    }

    /// A key length over the cap.
    static func keyTooLong(_ length: UInt64, cap: UInt64) -> TCPStoreViolation {
        TCPStoreViolation(rule: .keyTooLong, description: "key of \(length) bytes is over the cap of \(cap)")
    }

    /// A value length over the cap.
    static func valueTooLong(_ length: UInt64, cap: UInt64) -> TCPStoreViolation {
        TCPStoreViolation(rule: .valueTooLong, description: "value of \(length) bytes is over the cap of \(cap)")
    }

    /// A key count over the cap, in `command`.
    static func tooManyKeys(_ count: UInt64, cap: UInt64, command: TCPStoreCommand) -> TCPStoreViolation {
        TCPStoreViolation(rule: .tooManyKeys, description: "\(command.name) with \(count) keys is over the cap of \(cap)")
    }

    /// Lower-case hexadecimal with a `0x` prefix, zero-padded to `digits`.
    private static func hex(_ value: some BinaryInteger, digits: Int) -> String {
        let text = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
