/// One problem found in a policy file, printed as `FILE:LINE:COL: key.path: message`
/// (`FILE: key.path: message` where the position is not known).
public struct PolicyDiagnostic: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    /// Where in the document: `guard[0].allow[2]`, `firewall.deny`, `toml` for a syntax error.
    public var keyPath: String
    public var message: String
    /// A warning (printed `… key.path: warning: message`) never refuses a policy.
    public var isWarning = false

    public init(file: String, line: Int? = nil, column: Int? = nil, keyPath: String, message: String, isWarning: Bool = false) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.message = message
        self.isWarning = isWarning
    }

    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        return "\(location): \(keyPath): \(isWarning ? "warning: " : "")\(message)"
    }
}

/// A policy that was refused, with every problem found in it (not just the first).
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]

    public init(diagnostics: [PolicyDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
