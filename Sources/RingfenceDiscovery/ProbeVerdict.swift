/// What a listener turned out to be when `ZMTPProbe` connected to it.
public struct ProbeVerdict: Hashable, Sendable, CustomStringConvertible {
    /// The class of a listener, as far as a probe that writes nothing first can tell.
    public enum Kind: String, Hashable, Sendable {
        /// It spoke ZMTP: `socketType` says which socket (an XPUB is what the broker takes).
        case zmtp
        /// It sent nothing before the deadline: a client-speaks-first service (TCPStore, gloo,
        /// HTTP). It was sent no byte.
        case silent
        /// It spoke first, but not ZMTP (an SSH banner, say). It was sent no byte.
        case otherProtocol = "other-protocol"
        /// It accepted and closed without a byte.
        case closed
        /// The connection could not be made (closed meanwhile, backlog full, refused).
        case unreachable
    }

    public var kind: Kind
    /// The ZMTP socket type from the server's READY (`XPUB`, `ROUTER`, …), for `.zmtp`.
    public var socketType: String?
    /// Why, for people: the error or the first bytes' problem.
    public var detail: String?

    public init(_ kind: Kind, socketType: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.socketType = socketType
        self.detail = detail
    }

    /// Whether this is a ZMTP XPUB: what a discover guard brokers.
    public var isXPUB: Bool { kind == .zmtp && socketType == "XPUB" }

    public var description: String {
        switch kind {
        case .zmtp: return "zmtp \(socketType ?? "?")"
        default: return kind.rawValue
        }
    }
}
