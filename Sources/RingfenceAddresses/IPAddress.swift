#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 address as a plain integer.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are normalised to `.v4` when parsed or built from
/// bytes, so that a peer seen on a dual-stack socket matches the IPv4 entries of a policy.
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// The prefix `::ffff:0:0/96` under which IPv6 carries IPv4 addresses.
    static let mappedPrefix: UInt128 = 0xffff << 32

    /// Parses a dotted-quad IPv4 address or any RFC 4291 text form of an IPv6 address.
    /// Zone identifiers (`fe80::1%eth0`) are refused: a policy names hosts, not links.
    public init?(_ text: some StringProtocol) {
        if let v4 = IPAddress.parseIPv4(text) {
            self = .v4(v4)
        } else if let v6 = IPAddress.parseIPv6(String(text)) {
            self = IPAddress(normalisingV6: v6)
        } else {
            return nil
        }
    }

    /// Builds an address from an IPv6 integer, turning IPv4-mapped addresses into `.v4`.
    public init(normalisingV6 value: UInt128) {
        if value >> 32 == IPAddress.mappedPrefix >> 32 {
            self = .v4(UInt32(truncatingIfNeeded: value))
        } else {
            self = .v6(value)
        }
    }

    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// Whether this is a loopback address (`127.0.0.0/8`, `::1`): no other host can reach it.
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): return value >> 24 == 127
        case .v6(let value): return value == 1
        }
    }

    /// Whether this is the wildcard (`0.0.0.0`, `::`): bound to it, a socket listens on every address.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let value): return value == 0
        case .v6(let value): return value == 0
        }
    }

    /// The width of the address in bits: 32 or 128.
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
        case .v6(let value):
            return IPAddress.formatIPv6(value)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v6(let a), .v6(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        }
    }

    /// Strict dotted quad: four decimal octets, no leading zeros (which `inet_aton` would read as octal).
    static func parseIPv4(_ text: some StringProtocol) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        var leadingZero = false
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if leadingZero { return nil }
                if digits == 0 && byte == UInt8(ascii: "0") { leadingZero = true }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if digits > 3 || octet > 255 { return nil }
            case UInt8(ascii: "."):
                if digits == 0 || dots == 3 { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
                leadingZero = false
            default:
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    /// IPv6 through `inet_pton`, which implements every RFC 4291 text form; we only refuse zones.
    static func parseIPv6(_ text: String) -> UInt128? {
        guard text.utf8.contains(UInt8(ascii: ":")), !text.utf8.contains(UInt8(ascii: "%")) else { return nil }
        var storage = in6_addr()
        let ok = withUnsafeMutableBytes(of: &storage) { raw in
            inet_pton(AF_INET6, text, raw.baseAddress) == 1
        }
        guard ok else { return nil }
        return withUnsafeBytes(of: storage) { raw in
            raw.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
        }
    }

    /// The canonical RFC 5952 form, through `inet_ntop`.
    static func formatIPv6(_ value: UInt128) -> String {
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { raw in
            for index in 0..<16 {
                raw[index] = UInt8(truncatingIfNeeded: value >> UInt128(8 * (15 - index)))
            }
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        return withUnsafeBytes(of: &storage) { raw in
            guard inet_ntop(AF_INET6, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil else {
                return "::"
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
