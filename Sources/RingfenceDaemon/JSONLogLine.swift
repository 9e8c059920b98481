import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One JSON object per event (`LogFormat.json`), for log shippers that want JSON:
/// `{"ts":"2026-11-23T05:06:07.123Z","level":"info","msg":"fence applied","guards":"2","table":"ringfence"}`.
/// The same fields as `Logfmt`, in the same order (`ts`, `level`, `msg`, then metadata keys
/// sorted); every value is a JSON string. Written by hand because it is one line of output: a
/// JSON encoder would sort or escape no better.
enum JSONLogLine {
    /// One event as a JSON object, without the newline.
    static func line(timestamp: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var line = "{\"ts\":\(quote(timestamp)),\"level\":\(quote("\(level)")),\"msg\":\(quote(message))"
        for key in metadata.keys.sorted() where key != "ts" && key != "level" && key != "msg" {
            line += ",\(quote(key)):\(quote("\(metadata[key]!)"))"
        }
        return line + "}"
    }

    /// A JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func quote(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
