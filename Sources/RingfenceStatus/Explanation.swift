/// Which guard and which rule decide a connection from `address` to `port` on this host, and
/// why (`proxyctl explain`).
public struct Explanation: Codable, Hashable, Sendable {
    public var address: String
    public var port: UInt16
    /// `tcp` or `udp`.
    public var `protocol`: String
    /// `allowed`, `refused`, `audit` (would be refused; the guard only records it) or `open`
    /// (no guard fences the port).
    public var verdict: String
    public var guardName: String?
    public var mode: String?
    public var reason: String

    public init(
        address: String, port: UInt16, protocol: String, verdict: String, guardName: String?, mode: String?,
        reason: String
    ) {
        self.address = address
        self.port = port
        self.protocol = `protocol`
        self.verdict = verdict
        self.guardName = guardName
        self.mode = mode
        self.reason = reason
    }

    private enum CodingKeys: String, CodingKey {
        case guardName = "guard"
        case address, port, `protocol`, verdict, mode, reason
    }
}
