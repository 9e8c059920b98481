/// The header of a ZMTP frame: its flags and body size (RFC 23 §Framing, docs/zmtp.md §2).
///
/// A header is 2 bytes (flags, 1-byte size) or 9 bytes (flags with LONG, 8-byte big-endian size). The
/// flags are MORE `0x01`, LONG `0x02` and COMMAND `0x04`; bits 3–7 are reserved.
///
/// Bodies are left to the caller, so a large body can be read straight into its final buffer; the
/// header is checked against a size cap before any body byte is read, and never allocates.
public struct FrameHeader: Hashable, Sendable {
    /// More frames of the same message follow (never set on a command).
    public var more: Bool
    /// The body is a command (READY, SUBSCRIBE, PING, …) rather than message data.
    public var isCommand: Bool
    /// The body's size in bytes, not counting the header.
    public var size: UInt64
    /// The length of this header on the wire: 2 (short) or 9 (long).
    public var encodedCount: Int

    /// The MORE flag bit.
    @usableFromInline
    static let moreFlag: UInt8 = 0x01
    /// The LONG flag bit: an 8-byte size follows.
    @usableFromInline
    static let longFlag: UInt8 = 0x02
    /// The COMMAND flag bit.
    @usableFromInline
    static let commandFlag: UInt8 = 0x04
    /// Bits 3–7, which must be zero.
    @usableFromInline
    static let reservedFlags: UInt8 = 0xF8
    /// The largest size ZMTP allows: 2^63 − 1.
    @usableFromInline
    static let maxSize: UInt64 = (1 << 63) - 1

    /// Creates a header with an explicit encoded length (a peer may send a small size in the long form).
    @usableFromInline
    init(more: Bool, isCommand: Bool, size: UInt64, encodedCount: Int) {
        self.more = more
        self.isCommand = isCommand
        self.size = size
        self.encodedCount = encodedCount
    }

    /// Parses a header from the start of `bytes`, without allocating.
    ///
    /// Stricter than libzmq 4.3.4, which ignores reserved bits and glues a MORE command to the next frame
    /// (docs/zmtp.md §2). The long form is accepted for any size, as libzmq's decoder does.
    /// - Parameters:
    ///   - bytes: Received bytes starting at a frame boundary; bytes after the header are not looked at.
    ///   - maxSize: The largest body accepted. Checked here, from the header alone, so a hostile
    ///     declared size never leads to an allocation (docs/zmtp.md §8.1).
    /// - Returns: The header, or nil if `bytes` does not hold all of it yet (at most 9 bytes are needed).
    /// - Throws: `ZMTPError.reservedFlagBits`, `.moreOnCommand` (both known from the first byte),
    ///   `.sizeOutOfRange` for a LONG size ≥ 2^63, or `.frameTooLarge` for a size over `maxSize`.
    @inlinable
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxSize: UInt64) throws(ZMTPError) -> FrameHeader? {
        guard !bytes.isEmpty else { return nil }
        let flags = bytes[0]
        guard flags & reservedFlags == 0 else { throw .reservedFlagBits(flags: flags) }
        let more = flags & moreFlag != 0
        let isCommand = flags & commandFlag != 0
        guard !(more && isCommand) else { throw .moreOnCommand }
        let size: UInt64
        let encodedCount: Int
        if flags & longFlag != 0 {
            guard bytes.count >= 9 else { return nil }
            size = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt64.self))
            guard size <= Self.maxSize else { throw .sizeOutOfRange(size) }
            encodedCount = 9
        } else {
            guard bytes.count >= 2 else { return nil }
            size = UInt64(bytes[1])
            encodedCount = 2
        }
        guard size <= maxSize else { throw .frameTooLarge(size: size, cap: maxSize) }
        return FrameHeader(more: more, isCommand: isCommand, size: size, encodedCount: encodedCount)
    }

    /// Encodes a header: the short form when `size` ≤ 255, the long form otherwise.
    /// - Parameters:
    ///   - size: The body size, 0 or more.
    ///   - more: Whether more frames of the message follow; must be false for a command.
    ///   - command: Whether the body is a command.
    /// - Returns: 2 or 9 bytes.
    public static func encode(size: Int, more: Bool, command: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size <= 255 ? 2 : 9)
        encode(size: size, more: more, command: command, into: &bytes)
        return bytes
    }

    /// Appends an encoded header to `bytes`; see `encode(size:more:command:)`.
    public static func encode(size: Int, more: Bool, command: Bool, into bytes: inout [UInt8]) {
        precondition(size >= 0, "a frame size cannot be negative")
        precondition(!(more && command), "a command frame cannot have the MORE flag")
        var flags: UInt8 = (more ? moreFlag : 0) | (command ? commandFlag : 0)
        if size <= 255 {
            bytes.append(flags)
            bytes.append(UInt8(size))
        } else {
            flags |= longFlag
            bytes.append(flags)
            appendBigEndian(UInt64(size), to: &bytes)
        }
    }
}

/// Appends `value` in big-endian byte order.
func appendBigEndian<Value: FixedWidthInteger>(_ value: Value, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
}
