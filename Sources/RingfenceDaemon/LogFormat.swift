import Logging

/// How `proxyd` writes its log lines to standard error: logfmt (the default, for people and
/// `grep`) or JSON (for log shippers). One line per event either way.
public enum LogFormat: String, CaseIterable, Sendable {
    case logfmt
    case json

    /// One event in this format, without the newline.
    func line(timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        switch self {
        case .logfmt: return Logfmt.line(timestamp: timestamp, level: level, message: message, metadata: metadata)
        case .json: return JSONLogLine.line(timestamp: timestamp, level: level, message: message, metadata: metadata)
        }
    }
}
