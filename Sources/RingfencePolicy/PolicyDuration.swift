/// Parsing and printing of the policy's durations: a whole number with `us`, `ms`, `s` or `m`
/// (`"200us"`, `"250ms"`, `"5s"`, `"2m"`). A bare number is refused: its unit would be a guess.
public enum PolicyDuration {
    /// Parses a duration string.
    /// - Returns: the duration, or a message that says what is wrong.
    public static func parse(_ text: String) -> Result<Duration, PolicyValueError> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 12, let count = Int64(digits) else {
            return .failure(PolicyValueError("'\(text)' is not a duration; write a whole number with us, ms, s or m"))
        }
        switch unit {
        case "us": return .success(.microseconds(count))
        case "ms": return .success(.milliseconds(count))
        case "s": return .success(.seconds(count))
        case "m": return .success(.seconds(count * 60))
        case "":
            return .failure(PolicyValueError("'\(text)' has no unit; write it with us, ms, s or m, e.g. \"\(text)s\""))
        default:
            return .failure(PolicyValueError("'\(text)' has an unknown unit '\(unit)'; use us, ms, s or m"))
        }
    }

    /// The shortest exact form: `2m`, `5s`, `250ms`, `200us`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        // Only "us" input has a sub-millisecond part, and at most 10^12 us: no overflow here.
        if attoseconds % 1_000_000_000_000_000 != 0 { return "\(seconds * 1_000_000 + attoseconds / 1_000_000_000_000)us" }
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        if milliseconds != 0 && milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}
