/// A ZMQ socket type, as carried in the value of READY's `Socket-Type` property.
///
/// The raw value is the exact text on the wire. Values compare exactly: libzmq checks them in upper
/// case and rejects `sub` (docs/zmtp.md §3), so `SocketType(rawValue: "sub") != .sub` and it accepts nothing.
/// Any text can be represented, so a peer's READY always yields a type that can be logged and refused.
public struct SocketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The type's name exactly as on the wire, e.g. `"SUB"`.
    public let rawValue: String

    /// Creates a socket type from its wire name; never fails, unknown names simply accept no peer.
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// A publisher: sends to subscribers, drops what they send other than subscriptions.
    public static let pub = SocketType(rawValue: "PUB")
    /// An extended publisher: like PUB, and passes subscriptions up to its application.
    public static let xpub = SocketType(rawValue: "XPUB")
    /// A subscriber.
    public static let sub = SocketType(rawValue: "SUB")
    /// An extended subscriber: sends subscriptions as messages.
    public static let xsub = SocketType(rawValue: "XSUB")
    /// Request, in RFC 23's table (not used by the broker).
    public static let req = SocketType(rawValue: "REQ")
    /// Reply, in RFC 23's table (not used by the broker).
    public static let rep = SocketType(rawValue: "REP")
    /// Dealer, in RFC 23's table (not used by the broker).
    public static let dealer = SocketType(rawValue: "DEALER")
    /// Router, in RFC 23's table (not used by the broker).
    public static let router = SocketType(rawValue: "ROUTER")
    /// Push, in RFC 23's table (not used by the broker).
    public static let push = SocketType(rawValue: "PUSH")
    /// Pull, in RFC 23's table (not used by the broker).
    public static let pull = SocketType(rawValue: "PULL")
    /// Pair, in RFC 23's table (not used by the broker).
    public static let pair = SocketType(rawValue: "PAIR")

    /// The wire name.
    public var description: String { rawValue }

    /// Whether a peer of type `peer` may talk to a socket of this type.
    ///
    /// The RFC 23 table, as libzmq 4.3.4 enforces it in `mechanism.cpp` check_socket_type (docs/zmtp.md §3):
    /// PUB/XPUB ↔ SUB/XSUB, REQ ↔ REP/ROUTER, REP ↔ REQ/DEALER, DEALER ↔ REP/DEALER/ROUTER,
    /// ROUTER ↔ REQ/DEALER/ROUTER, PUSH ↔ PULL, PAIR ↔ PAIR. ZMTP 3.1's draft types accept nothing here.
    func accepts(_ peer: SocketType) -> Bool {
        switch self {
        case .pub, .xpub: peer == .sub || peer == .xsub
        case .sub, .xsub: peer == .pub || peer == .xpub
        case .req: peer == .rep || peer == .router
        case .rep: peer == .req || peer == .dealer
        case .dealer: peer == .rep || peer == .dealer || peer == .router
        case .router: peer == .req || peer == .dealer || peer == .router
        case .push: peer == .pull
        case .pull: peer == .push
        case .pair: peer == .pair
        default: false
        }
    }
}
