/// A metadata property of a READY command: a name and a binary value (RFC 23 §The READY Command).
///
/// On the wire: a 1-byte name length (1–255), the name, a 4-byte big-endian value length
/// (0 … 2^31−1), the value. Names are case-insensitive by the spec, though libzmq 4.3.4 compares
/// them exactly, so send the canonical casing (`Socket-Type`) and match any (docs/zmtp.md §3).
public struct Property: Hashable, Sendable {
    /// The property name, e.g. `Socket-Type`, `Identity`, or an application's `X-…`.
    public var name: String
    /// The raw value.
    public var value: [UInt8]

    /// The largest value length the wire format allows: 2^31 − 1.
    static let maxValueCount = Int(Int32.max)

    /// Creates a property.
    init(name: String, value: [UInt8]) {
        self.name = name
        self.value = value
    }

    /// Whether this property's name is `other`, ignoring ASCII case (RFC 23: names are case-insensitive).
    func hasName(_ other: String) -> Bool {
        name.utf8.elementsEqual(other.utf8) { asciiLowercased($0) == asciiLowercased($1) }
    }

    /// The encoded length of this property.
    var encodedCount: Int { 1 + name.utf8.count + 4 + value.count }

    /// Appends the encoded property to `bytes`.
    func append(to bytes: inout [UInt8]) {
        precondition((1...255).contains(name.utf8.count), "a property name is 1 to 255 bytes")
        precondition(value.count <= Self.maxValueCount, "a property value is at most 2^31-1 bytes")
        bytes.append(UInt8(name.utf8.count))
        bytes.append(contentsOf: name.utf8)
        appendBigEndian(UInt32(value.count), to: &bytes)
        bytes.append(contentsOf: value)
    }
}

/// An ASCII byte in lower case; other bytes unchanged.
private func asciiLowercased(_ byte: UInt8) -> UInt8 {
    (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
}
