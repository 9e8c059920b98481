import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One logfmt line per event (`LogFormat.logfmt`, the default):
/// `ts=2026-11-23T05:06:07.123Z level=info msg="fence applied" table=ringfence guards=2`.
/// Keys sorted, values quoted only when they need it, so that `grep` and log shippers read it
/// alike at 3 a.m. swift-log ships no logfmt handler, hence this small one.
enum Logfmt {
    /// One event, without the newline.
    static func line(timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "ts=\(timestamp) level=\(level) msg=\(quote(message))"
        for key in metadata.keys.sorted() {
            line += " \(key)=\(quote("\(metadata[key]!)"))"
        }
        return line
    }

    /// Quotes a value when it is empty or holds a space, a quote, `=` or a control character.
    static func quote(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.value < 0x20 || $0 == "\\" }
        guard needsQuotes else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// UTC, RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(epochSeconds: now.tv_sec, milliseconds: Int32(now.tv_nsec / 1_000_000))
    }

    /// Seconds since the epoch, now.
    static func epochSeconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now.tv_sec
    }

    /// UTC, RFC 3339: to the second, or with milliseconds when they are given.
    static func timestamp(epochSeconds: Int, milliseconds: Int32? = nil) -> String {
        var seconds = epochSeconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + (milliseconds.map { ".\(pad($0, 3))" } ?? "") + "Z"
    }
}
