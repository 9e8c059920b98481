/// Why the daemon did not do what a control request asked, as the reply carries it: a stable
/// code for scripts, a message for people, and detail lines (a refused policy's
/// `FILE:LINE:COL: key.path: message` lines).
public struct ControlError: Error, Codable, Hashable, Sendable, CustomStringConvertible {
    /// Stable codes: `bad-request`, `unsupported-version`, `too-large`, `timeout`, `not-permitted`,
    /// `policy-refused` (the file has errors), `reload-refused` (a guard could not start or
    /// nftables refused), `not-found` (no such guard; no such ban), `ban-conflict` (the block
    /// overlaps another ban), `firewall-error` (nftables could not be read or changed),
    /// `internal`.
    public var code: String
    public var message: String
    public var details: [String]

    public init(code: String, message: String, details: [String] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String {
        ([message] + details).joined(separator: "\n")
    }
}
