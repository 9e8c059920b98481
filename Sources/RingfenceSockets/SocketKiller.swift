import CRingfenceLinux
import RingfenceAddresses
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Closes live TCP connections by their remote address, as `ss -K dst BLOCK` does.
///
/// `proxyctl kick PEER` uses it to cut a peer's direct connections to this host: removing the
/// peer from an allowlist stops new connections, not the established ones. It speaks sock_diag
/// netlink: a dump of the TCP sockets, then SOCK_DESTROY for each match (the kernel needs
/// CONFIG_INET_DIAG_DESTROY). It needs CAP_NET_ADMIN (EPERM otherwise), and it sees only the
/// network namespace of the calling thread: sockets in other namespaces are never touched.
public enum SocketKiller {
    /// Destroys every TCP socket, in any state but LISTEN and TIME_WAIT, whose remote address lies
    /// in `block` and whose local port is not in `keepLocalPorts` (the relay and broker listen
    /// ports: the daemon closes its own sessions itself). An IPv4 block also matches dual-stack
    /// sockets whose peer is IPv4 (`::ffff:a.b.c.d`). The owner of a destroyed socket sees
    /// ECONNABORTED, its peer a reset.
    ///
    /// Returns how many sockets it destroyed; one that vanishes between the dump and its
    /// destruction (closed by its peer's reset, say) is not counted. Connections made after the
    /// dump are not seen. It blocks (each netlink answer is awaited at most 2 s): never call it on
    /// an event loop.
    /// - Parameter onlyLocalPorts: when given, only sockets whose local port is one of these
    ///   (a firewall guard's ports), and `keepLocalPorts` is ignored.
    public static func destroyTCP(
        remote block: CIDR, keepLocalPorts: [UInt16] = [], onlyLocalPorts: [UInt16]? = nil
    ) throws(Errno) -> Int {
        let family: Int32
        let address: [UInt8]
        switch block.address {
        case .v4(let value):
            family = AF_INET
            address = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        case .v6(let value):
            family = AF_INET6
            address = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        }
        var destroyed: Int32 = 0
        _ = try Posix.must {
            address.withUnsafeBufferPointer { bytes in
                (onlyLocalPorts ?? keepLocalPorts).withUnsafeBufferPointer { ports in
                    CRingfenceLinux_destroySockets(
                        family, bytes.baseAddress, Int32(block.prefixLength), ports.baseAddress, Int32(ports.count),
                        onlyLocalPorts == nil ? 0 : 1, &destroyed)
                }
            }
        }
        return Int(destroyed)
    }
}
