/// How `proxyd` writes its log lines to standard error: logfmt (the default, for people and
/// `grep`) or JSON (for log shippers). One line per event either way.
public enum LogFormat: String, CaseIterable, Sendable {
    case logfmt
    case json
}
