import Logging

#if canImport(Glibc)
import Glibc
#endif

/// proxyd's swift-log handler: one line per event on standard error, in `format` (logfmt or
/// JSON), the logger's metadata merged with the event's (the event's wins).
public struct LogLineHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let format: LogFormat

    public init(format: LogFormat) {
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = format.line(
            timestamp: Logfmt.timestamp(), level: event.level, message: "\(event.message)",
            metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        line += "\n"
        // One write(2) per line: lines from different threads never interleave.
        line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
