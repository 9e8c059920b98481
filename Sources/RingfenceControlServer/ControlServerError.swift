import SystemPackage

/// Why the control socket could not be served, worded for the operator who must fix it.
public enum ControlServerError: Error, Sendable, CustomStringConvertible {
    case badPath(String)
    case notASocket(String)
    case inUse(String)
    case bind(String, Errno)

    public var description: String {
        switch self {
        case .badPath(let path):
            return "control socket '\(path)' must be an absolute path of at most 107 bytes"
        case .notASocket(let path):
            return "control socket '\(path)' exists and is not a socket: remove it or choose another path"
        case .inUse(let path):
            return "control socket '\(path)' is in use: another proxyd is running there (stop it, or use --control-socket)"
        case .bind(let path, let error):
            return "cannot listen on control socket '\(path)': \(error)"
        }
    }
}
