import CRingfenceLinux
import RingfenceAddresses
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One TCP socket of this network namespace, as sock_diag reports it.
public struct TCPSocketRow: Hashable, Sendable {
    /// AF_INET or AF_INET6: the socket's family (an IPv6 socket may hold an IPv4-mapped address,
    /// which `local` and `remote` give as IPv4).
    public var family: Int32
    /// The kernel's TCP state: 1 ESTABLISHED, 10 LISTEN, …
    public var state: UInt8
    public var local: IPAddress
    public var localPort: UInt16
    public var remote: IPAddress
    public var remotePort: UInt16
    public var uid: UInt32
    public var inode: UInt64
}

/// Lists TCP sockets of the calling thread's network namespace over netlink sock_diag: one dump
/// per call, no /proc parsing. Needs no privilege for listing on this kernel, but a seccomp or
/// LSM policy may refuse the netlink socket (EPERM, EACCES).
public enum TCPSocketTable {
    public static let established: UInt8 = 1
    public static let listen: UInt8 = 10

    /// The sockets of `family` (AF_INET, AF_INET6, or AF_UNSPEC for both in one dump, with the
    /// kernel's older TCPDIAG_GETSOCK request) whose state is one of `states`, and whose local port is
    /// `localPort` when given, asked over `session` (or a netlink socket made for this call).
    /// It blocks (each answer is awaited at most 2 s).
    public static func sockets(
        family: Int32, states: [UInt8], localPort: UInt16? = nil, on session: Session? = nil
    ) throws(Errno) -> [TCPSocketRow] {
        let mask = states.reduce(UInt32(0)) { $0 | (1 << UInt32($1 & 31)) }
        var rows: UnsafeMutablePointer<CRingfenceLinux_TCPSocket>?
        var count: Int32 = 0
        _ = try Posix.must { CRingfenceLinux_listTCPSockets(session?.fd ?? -1, family, mask, localPort.map(Int32.init) ?? -1, &rows, &count) }
        defer { CRingfenceLinux_freeTCPSockets(rows) }
        guard let rows else { return [] }
        return (0..<Int(count)).map { index in
            let row = rows[index]
            return TCPSocketRow(
                family: Int32(row.family), state: row.state,
                local: address(row.local, family: Int32(row.family)), localPort: row.localPort,
                remote: address(row.remote, family: Int32(row.family)), remotePort: row.remotePort,
                uid: row.uid, inode: row.inode)
        }
    }

    /// A sock_diag netlink socket kept open for repeated listings (a watch polling every 10 ms).
    /// It lists the namespace of the thread that made it, and is closed when released.
    public final class Session: Sendable {
        let fd: Int32

        public init() throws(Errno) {
            fd = try Posix.must { CRingfenceLinux_openSockDiag() }
        }

        deinit { _ = Glibc.close(fd) }
    }

    /// A sock_diag address (network order; the first 4 bytes for AF_INET).
    static func address(_ bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8), family: Int32) -> IPAddress {
        withUnsafeBytes(of: bytes) { raw in
            if family == AF_INET { return .v4(raw.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
            return IPAddress(normalisingV6: raw.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        }
    }
}
