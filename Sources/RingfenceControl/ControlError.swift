import RingfenceStatus

/// Why the daemon did not do what a control request asked, as the reply carries it: a stable
/// code for scripts, a message for people, and detail lines (a refused policy's
/// `FILE:LINE:COL: key.path: message` lines).
public struct ControlError: Error, Codable, Hashable, Sendable, CustomStringConvertible {
    /// A stable code (`ErrorCode`'s raw values on the wire).
    public var code: ErrorCode
    public var message: String
    public var details: [String]

    public init(code: ErrorCode, message: String, details: [String] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String {
        ([message] + details).joined(separator: "\n")
    }
}
