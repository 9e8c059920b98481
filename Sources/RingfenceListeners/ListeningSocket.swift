import RingfenceAddresses

/// One TCP socket in LISTEN in this network namespace: where it listens, its socket inode (what
/// /proc/PID/fd links name, and what tells a closed-and-rebound port from the same listener) and
/// the uid that owns it.
public struct ListeningSocket: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16
    public var inode: UInt64
    public var uid: UInt32

    public init(address: IPAddress, port: UInt16, inode: UInt64, uid: UInt32) {
        self.address = address
        self.port = port
        self.inode = inode
        self.uid = uid
    }

    public var description: String {
        address.isIPv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// One ESTABLISHED TCP socket of this namespace, for race accounting: who is connected straight to
/// a port (a reader that connected before the redirect was live).
public struct EstablishedSocket: Hashable, Sendable {
    public var local: IPAddress
    public var localPort: UInt16
    public var remote: IPAddress
    public var remotePort: UInt16
    public var inode: UInt64

    public init(local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16, inode: UInt64) {
        self.local = local
        self.localPort = localPort
        self.remote = remote
        self.remotePort = remotePort
        self.inode = inode
    }
}
