import CRingfenceLinux
import RingfenceAddresses
import RingfencePolicy
import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// Resolves a peer name with the system resolver: getaddrinfo(3) for the addresses (so
/// /etc/hosts, nsswitch and resolv.conf's search list apply as they do to vLLM itself), and one
/// DNS query of type A (AAAA when there is no A) through res_nsearch(3) for the records' TTL,
/// which getaddrinfo does not report. Both block for as long as resolv.conf's `timeout` and
/// `attempts` allow: call them off every event loop (the daemon's resolver queue).
///
/// Written here because no package of the mirror resolves names (swift-nio's resolver is out:
/// no SwiftNIO); the DNS response decoder is `DNSAnswer`.
public enum NameResolver {
    /// Resolves `name` once.
    public static func lookup(_ name: PeerName) -> NameLookup {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name.name, nil, &hints, &result)
        guard status == 0 else {
            let reason = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            return .failed(reason)
        }
        defer { freeaddrinfo(result) }
        var addresses: Set<IPAddress> = []
        var entry = result
        while let current = entry {
            if let address = current.pointee.ai_addr, Int(current.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { raw in
                    raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(current.pointee.ai_addrlen)))
                }
                if let socketAddress = SocketAddress(storage: storage) { addresses.insert(socketAddress.address) }
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failed("no IPv4 or IPv6 address") }
        return .addresses(addresses, ttl: recordTTL(name))
    }

    /// The smallest TTL of the name's A records, or of its AAAA records when it has no A; nil
    /// when neither query gives an answer (a name from /etc/hosts, a server that fails).
    static func recordTTL(_ name: PeerName) -> Duration? {
        for type: Int32 in [1, 28] {
            var answer = [UInt8](repeating: 0, count: 4096)
            let count = answer.withUnsafeMutableBufferPointer { buffer in
                CRingfenceLinux_dnsQuery(name.name, type, buffer.baseAddress, Int32(buffer.count))
            }
            guard count > 0, let decoded = try? DNSAnswer(decoding: Array(answer.prefix(Int(count)))),
                !decoded.addresses.isEmpty, let ttl = decoded.minimumTTL
            else { continue }
            return .seconds(Int64(ttl))
        }
        return nil
    }
}
