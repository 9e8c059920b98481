/// Why a ZMTP peer was refused: which rule of the greeting, framing or handshake it broke.
///
/// Every error is final for its connection: the caller is expected to close it (after sending
/// `errorReason` in an ERROR command when that is non-nil and the handshake is still running).
/// `description` says what happened in plain words; any text that came from the peer is quoted and
/// escaped, so it is safe to log.
public enum ZMTPError: Error, Hashable, Sendable, CustomStringConvertible {
    // MARK: Greeting (docs/zmtp.md §1)

    /// Greeting byte 0 is not the signature's `0xFF`: the peer does not speak ZMTP at all (an HTTP
    /// request, say). Known from the first byte.
    case notZMTP(firstByte: UInt8)
    /// Greeting byte 9 has its least significant bit clear: the peer speaks unversioned ZMTP 1.0,
    /// which is refused (a downgrade, docs/zmtp.md §8.4).
    case unversionedPeer(signatureEnd: UInt8)
    /// The greeting's major version is below 3 (ZMTP 2.0 or older).
    case unsupportedVersion(major: UInt8)
    /// The greeting names a security mechanism other than exactly `NULL` (e.g. `PLAIN`, `CURVE`); the
    /// associated value is the mechanism field without its trailing NUL padding.
    case unsupportedMechanism(String)
    /// The greeting's as-server byte is not 0, which the NULL mechanism forbids (RFC 23).
    case asServerWithNull(UInt8)

    // MARK: Framing (docs/zmtp.md §2)

    /// A frame's flags byte sets one of the reserved bits 3–7 (libzmq ignores them; we refuse).
    case reservedFlagBits(flags: UInt8)
    /// A command frame has the MORE flag (libzmq glues it to the next frame; we refuse).
    case moreOnCommand
    /// A LONG frame declares a size of 2^63 or more, which ZMTP does not allow.
    case sizeOutOfRange(UInt64)
    /// A frame declares a body over the caller's cap; refused from the header alone, before any body byte.
    case frameTooLarge(size: UInt64, cap: UInt64)

    // MARK: Commands and the handshake (docs/zmtp.md §3, §5)

    /// A command frame during the handshake declares a body over `Handshake`'s `maxCommandBytes`.
    case commandTooLarge(size: UInt64, cap: UInt64)
    /// A command body does not follow its grammar. `command` is the command's name when it could be
    /// read (or empty), `problem` what is wrong with it.
    case malformedCommand(command: String, problem: String)
    /// A data frame arrived before the peer's READY.
    case dataBeforeReady
    /// The peer's first command is neither READY nor ERROR; the associated value is its name.
    case expectedReady(got: String)
    /// The peer sent ERROR during the handshake: it refuses us, with this reason.
    case peerError(reason: String)
    /// The peer's READY has no `Socket-Type` property (libzmq accepts that; we require it, docs/zmtp.md §3).
    case missingSocketType
    /// The peer's READY carries a `Socket-Type` our local type does not accept (docs/zmtp.md §3, table).
    case socketTypeMismatch(local: SocketType, peer: SocketType)

    /// What happened, in plain words, e.g. "frame of 4611686018427387904 bytes is over the 67108864-byte cap".
    public var description: String {
        switch self {
        case .notZMTP(let byte):
            "first byte is \(hex(byte)) (\(character(byte))), not ZMTP's signature 0xff: the peer does not speak ZMTP"
        case .unversionedPeer(let byte):
            "greeting byte 9 is \(hex(byte)), whose low bit is 0: the peer speaks ZMTP 1.0, which is refused"
        case .unsupportedVersion(let major):
            "greeting declares ZMTP major version \(major); 3 or later is required"
        case .unsupportedMechanism(let mechanism):
            "greeting asks for security mechanism \(quoted(mechanism)); only NULL is accepted"
        case .asServerWithNull(let byte):
            "greeting sets as-server to \(byte), which the NULL mechanism forbids"
        case .reservedFlagBits(let flags):
            "frame flags \(hex(flags)) set reserved bits (3 to 7 must be 0)"
        case .moreOnCommand:
            "command frame has the MORE flag set"
        case .sizeOutOfRange(let size):
            "frame declares \(size) bytes, over ZMTP's maximum of 2^63-1"
        case .frameTooLarge(let size, let cap):
            "frame of \(size) bytes is over the \(cap)-byte cap"
        case .commandTooLarge(let size, let cap):
            "handshake command of \(size) bytes is over the \(cap)-byte cap"
        case .malformedCommand(let command, let problem):
            command.isEmpty
                ? "malformed command: \(problem)" : "malformed \(quoted(command)) command: \(problem)"
        case .dataBeforeReady:
            "peer sent a data frame before its READY command"
        case .expectedReady(let name):
            "peer sent \(quoted(name)) where its READY command was expected"
        case .peerError(let reason):
            "peer refused the connection with ERROR \(quoted(reason))"
        case .missingSocketType:
            "peer's READY has no Socket-Type property"
        case .socketTypeMismatch(let local, let peer):
            "peer's socket type \(quoted(peer.rawValue)) cannot talk to our \(local.rawValue)"
        }
    }

    /// The short reason to send in a ZMTP ERROR command before closing, or nil where the protocol has no
    /// place for one.
    ///
    /// Nil for greeting errors (the peer is not in a ZMTP 3 NULL command phase, so it would not read an
    /// ERROR) and for the peer's own ERROR (never answer an ERROR with one). The reasons never echo
    /// peer-supplied bytes, are printable ASCII and at most 255 bytes (RFC 23 ERROR grammar). ERROR
    /// belongs to the handshake: after it, libzmq silently drops commands it does not know (docs/zmtp.md §2),
    /// so just close.
    public var errorReason: String? {
        switch self {
        case .notZMTP, .unversionedPeer, .unsupportedVersion, .unsupportedMechanism, .asServerWithNull, .peerError:
            nil
        case .reservedFlagBits, .moreOnCommand, .sizeOutOfRange: "malformed frame"
        case .frameTooLarge: "frame too large"
        case .commandTooLarge: "command too large"
        case .malformedCommand: "malformed command"
        case .dataBeforeReady: "message before READY"
        case .expectedReady: "expected READY"
        case .missingSocketType: "missing Socket-Type"
        case .socketTypeMismatch: "invalid socket type"
        }
    }
}

/// Lower-case hexadecimal with a `0x` prefix, two digits.
private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16)
    return "0x" + (digits.count < 2 ? "0" + digits : digits)
}

/// A byte as a quoted printable ASCII character, or "not printable".
private func character(_ byte: UInt8) -> String {
    (0x20...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "not printable"
}

/// Peer-supplied text in double quotes, with anything but printable ASCII escaped as `\u{..}` and
/// cut after 64 characters, so a hostile peer cannot forge or flood a log line.
func quoted(_ text: String) -> String {
    var result = "\""
    for (index, scalar) in text.unicodeScalars.enumerated() {
        if index == 64 {
            result += "..."
            break
        }
        switch scalar {
        case "\"", "\\": result += "\\" + String(scalar)
        case " "..."~": result.unicodeScalars.append(scalar)
        default: result += "\\u{" + String(scalar.value, radix: 16) + "}"
        }
    }
    return result + "\""
}
