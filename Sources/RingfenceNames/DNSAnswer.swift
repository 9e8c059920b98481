import RingfenceAddresses

/// The part of a DNS response proxyd reads: the A and AAAA records of its answer section and the
/// smallest TTL among the answer's records (CNAMEs included), which bounds how long the addresses
/// may be trusted (RFC 1035 §4.1). A pure decoder of the bytes `res_nsearch` returns; it never
/// follows a compression pointer (names are skipped, not read), so it cannot loop.
public struct DNSAnswer: Hashable, Sendable {
    public var addresses: [IPAddress] = []
    /// The smallest TTL of the answer's records; nil when the answer has none.
    public var minimumTTL: UInt32?

    /// Why bytes are not a DNS response this decoder can read.
    public enum DecodeError: Error, Hashable, Sendable {
        /// The message ends inside its header, a question or a record.
        case truncated
        /// A name's label is neither a length of at most 63 nor a compression pointer.
        case badLabel
    }

    private static let typeA: UInt16 = 1
    private static let typeAAAA: UInt16 = 28

    /// Decodes a response.
    /// - Throws: `DecodeError` when the bytes end early or hold a malformed name.
    public init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = Reader(bytes: bytes)
        _ = try reader.u16()  // id
        _ = try reader.u16()  // flags
        let questions = try reader.u16()
        let answers = try reader.u16()
        _ = try reader.u32()  // authority and additional counts
        for _ in 0..<questions {
            try reader.skipName()
            _ = try reader.u32()  // type, class
        }
        for _ in 0..<answers {
            try reader.skipName()
            let type = try reader.u16()
            _ = try reader.u16()  // class
            let ttl = try reader.u32()
            let length = Int(try reader.u16())
            let data = try reader.take(length)
            minimumTTL = min(minimumTTL ?? ttl, ttl)
            if type == Self.typeA, length == 4 {
                addresses.append(.v4(data.reduce(0) { $0 << 8 | UInt32($1) }))
            } else if type == Self.typeAAAA, length == 16 {
                addresses.append(IPAddress(normalisingV6: data.reduce(0) { $0 << 8 | UInt128($1) }))
            }
        }
    }

    /// A cursor over the message; every read is bounds-checked.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func take(_ count: Int) throws(DecodeError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else { throw .truncated }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        mutating func u16() throws(DecodeError) -> UInt16 {
            try take(2).reduce(0) { $0 << 8 | UInt16($1) }
        }

        mutating func u32() throws(DecodeError) -> UInt32 {
            try take(4).reduce(0) { $0 << 8 | UInt32($1) }
        }

        /// Skips a name: labels up to the root label, or up to a compression pointer (which ends it).
        mutating func skipName() throws(DecodeError) {
            while true {
                let length = try take(1).first ?? 0
                switch length {
                case 0: return
                case 0xC0...0xFF:
                    _ = try take(1)
                    return
                case 1...63: _ = try take(Int(length))
                default: throw .badLabel
                }
            }
        }
    }
}
