/// One TCP listener of the host as `proxyctl listeners` shows it: where it listens, whose it is,
/// what it speaks as far as discovery could tell, and what stands in front of it. The host's
/// attack surface as proxyd sees it.
public struct ListenerStatus: Codable, Hashable, Sendable {
    /// What stands in front of a listener.
    public enum Coverage: String, Codable, Hashable, Sendable {
        /// A discovered XPUB's broker (`guard` is `GUARD/ADDRESS:PORT`), or a policy broker.
        case brokered
        /// A relay guard of the policy.
        case relayed
        /// The kernel fence of `guard` (a firewall guard, the host guard, or a discover guard
        /// while it classifies the listener).
        case fenced
        /// The host guard's `public` ports: open to everyone.
        case `public`
        /// Bound to a loopback address: other hosts cannot reach it.
        case loopback
        /// One of proxyd's own listeners.
        case proxyd
        /// Nothing: any host that can route to it can connect.
        case nothing
    }

    public var address: String
    public var port: UInt16
    public var pid: Int32?
    /// The owner's command line (truncated), when known.
    public var process: String?
    /// `zmtp`, `silent`, `other-protocol`, `closed`, `unreachable`, or `unprobed` (no discover
    /// guard wanted it: only a discover guard's candidates are probed).
    public var listenerClass: String
    /// The ZMTP socket type (`XPUB`, `ROUTER`, …) when `listenerClass` is `zmtp`.
    public var socketType: String?
    public var coverage: Coverage
    /// The guard that covers it, if one does.
    public var guardName: String?
    /// The covering guard only audits: it refuses nothing.
    public var audit: Bool
    /// A discovered XPUB: subscribers connected through its broker now.
    public var readersBrokered: Int?
    /// A discovered XPUB: connections from other hosts straight to the engine, made before the
    /// redirect was live (discovery by polling can be late); they are not brokered.
    public var directConnections: Int?

    public init(
        address: String, port: UInt16, pid: Int32?, process: String?, listenerClass: String, socketType: String?,
        coverage: Coverage, guardName: String?, audit: Bool = false, readersBrokered: Int? = nil,
        directConnections: Int? = nil
    ) {
        self.address = address
        self.port = port
        self.pid = pid
        self.process = process
        self.listenerClass = listenerClass
        self.socketType = socketType
        self.coverage = coverage
        self.guardName = guardName
        self.audit = audit
        self.readersBrokered = readersBrokered
        self.directConnections = directConnections
    }

    private enum CodingKeys: String, CodingKey {
        case listenerClass = "class"
        case guardName = "guard"
        case address, port, pid, process, socketType, coverage, audit, readersBrokered, directConnections
    }
}
