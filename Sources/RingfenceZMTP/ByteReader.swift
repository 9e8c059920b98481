/// A cursor over a received command body: every read checks the bytes left and returns nil when they
/// are too few, so a parser can never read past the body, whatever lengths a peer declares.
struct ByteReader {
    /// The body being read.
    let bytes: UnsafeRawBufferPointer
    /// How many bytes have been read.
    private(set) var offset = 0

    /// Starts reading at the beginning of `bytes`.
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The bytes not read yet.
    var remaining: Int { bytes.count - offset }

    /// Reads one byte, or nil at the end.
    mutating func readByte() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads a big-endian integer, or nil (reading nothing) if fewer than its width are left.
    mutating func readBigEndian<Value: FixedWidthInteger>(_: Value.Type) -> Value? {
        let width = MemoryLayout<Value>.size
        guard remaining >= width else { return nil }
        defer { offset += width }
        return Value(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Value.self))
    }

    /// Reads `count` bytes, or nil (reading nothing) if fewer are left.
    mutating func read(_ count: Int) -> UnsafeRawBufferPointer? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    /// Reads everything left.
    mutating func readRest() -> UnsafeRawBufferPointer {
        defer { offset = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset...])
    }
}
