import RingfenceAddresses
import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// The TCP sockets of the calling thread's network namespace, over netlink sock_diag
/// (docs/listeners.md §3). Each call blocks for one dump per family: never call it on an event
/// loop.
public enum SocketListing {
    /// Every TCP listener, IPv4 and IPv6: one sock_diag dump each.
    public static func listeners() throws(ListenerError) -> [ListeningSocket] {
        try listeners(family: AF_INET) + listeners(family: AF_INET6)
    }

    /// The established sockets whose LOCAL port is `localPort` (the accepted side of connections
    /// to a listener on that port, and any client socket that happens to use it).
    public static func established(localPort: UInt16) throws(ListenerError) -> [EstablishedSocket] {
        var sockets: [EstablishedSocket] = []
        for family in [AF_INET, AF_INET6] {
            for row in try rows(family: family, state: TCPSocketTable.established, localPort: localPort) {
                sockets.append(EstablishedSocket(
                    local: row.local, localPort: row.localPort, remote: row.remote, remotePort: row.remotePort,
                    inode: row.inode))
            }
        }
        return sockets
    }

    /// Whether the connection from `clientPort` to the listener on `listenerPort` still waits in
    /// the listener's accept queue: its accepted side is listed, but has no inode until the
    /// application accepts it (sock_diag reports the inode of the socket's file, which accept(2)
    /// makes). False once accepted, or when no such connection is listed.
    public static func awaitsAccept(listenerPort: UInt16, clientPort: UInt16) throws(ListenerError) -> Bool {
        try established(localPort: listenerPort).contains { $0.remotePort == clientPort && $0.inode == 0 }
    }

    /// The listeners of one family (AF_INET or AF_INET6): what the watch diffs, one dump (over
    /// the watch's own netlink socket when given).
    static func listeners(family: Int32, on session: TCPSocketTable.Session? = nil) throws(ListenerError) -> [ListeningSocket] {
        try rows(family: family, state: TCPSocketTable.listen, session: session).map {
            ListeningSocket(address: $0.local, port: $0.localPort, inode: $0.inode, uid: $0.uid)
        }
    }

    /// Every listener by its socket's family (AF_INET, AF_INET6; both keys always present), from
    /// one dump of both families: what the watch's polls use, half the kernel's table walks.
    static func listenersByFamily(on session: TCPSocketTable.Session? = nil) throws(ListenerError) -> [Int32: [ListeningSocket]] {
        var byFamily: [Int32: [ListeningSocket]] = [AF_INET: [], AF_INET6: []]
        for row in try rows(family: AF_UNSPEC, state: TCPSocketTable.listen, session: session) {
            byFamily[row.family, default: []].append(
                ListeningSocket(address: row.local, port: row.localPort, inode: row.inode, uid: row.uid))
        }
        return byFamily
    }

    private static func rows(
        family: Int32, state: UInt8, localPort: UInt16? = nil, session: TCPSocketTable.Session? = nil
    ) throws(ListenerError) -> [TCPSocketRow] {
        do {
            return try TCPSocketTable.sockets(family: family, states: [state], localPort: localPort, on: session)
        } catch {
            throw .listing(error)
        }
    }
}
