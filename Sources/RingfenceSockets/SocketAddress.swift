import RingfenceAddresses

#if canImport(Glibc)
import Glibc
#endif

/// An IP address and TCP port, convertible to and from the C `sockaddr` forms.
/// IPv4-mapped IPv6 peers become IPv4, as everywhere in Ringfence.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// From a C `sockaddr_storage` holding an IPv4 or IPv6 address; nil for other families.
    public init?(storage: sockaddr_storage) {
        self.init(storage)
    }

    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let v4 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            address = .v4(UInt32(bigEndian: v4.sin_addr.s_addr))
            port = UInt16(bigEndian: v4.sin_port)
        case AF_INET6:
            let v6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let value = withUnsafeBytes(of: v6.sin6_addr) { raw in raw.reduce(UInt128(0)) { $0 << 8 | UInt128($1) } }
            address = IPAddress(normalisingV6: value)
            port = UInt16(bigEndian: v6.sin6_port)
        default:
            return nil
        }
    }

    /// The socket family to use to reach this address.
    public var family: Int32 { address.isIPv4 ? AF_INET : AF_INET6 }

    public var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }

    /// Calls `body` with this address as a C `sockaddr` and its length.
    func withSockAddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        switch address {
        case .v4(let value):
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            v4.sin_addr.s_addr = value.bigEndian
            return try withUnsafeBytes(of: &v4) { raw throws(E) in
                try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        case .v6(let value):
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &v6.sin6_addr) { raw in
                for index in 0..<16 { raw[index] = UInt8(truncatingIfNeeded: value >> UInt128(8 * (15 - index))) }
            }
            return try withUnsafeBytes(of: &v6) { raw throws(E) in
                try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }
}
