/// How long `proxyctl kick --ban` bans a peer: a whole number with `s`, `m`, `h` or `d`
/// (`30s`, `10m`, `2h`, `1d`), from one second to `maxDays` days. Longer units than the
/// policy's durations, since bans last for an incident, not a handshake.
public enum BanDuration {
    public static let maxDays: Int64 = 30

    public static func parse(_ text: String) -> Result<Duration, PolicyValueError> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 9, let count = Int64(digits) else {
            return .failure(PolicyValueError("'\(text)' is not a ban duration; write a whole number with s, m, h or d, e.g. \"10m\""))
        }
        let seconds: Int64
        switch unit {
        case "s": seconds = count
        case "m": seconds = count * 60
        case "h": seconds = count * 3600
        case "d": seconds = count * 86_400
        case "": return .failure(PolicyValueError("'\(text)' has no unit; write it with s, m, h or d, e.g. \"\(text)s\""))
        default: return .failure(PolicyValueError("'\(text)' has an unknown unit '\(unit)'; use s, m, h or d"))
        }
        guard seconds >= 1 else { return .failure(PolicyValueError("'\(text)': a ban lasts at least 1s")) }
        guard seconds <= maxDays * 86_400 else {
            return .failure(PolicyValueError("'\(text)': a ban lasts at most \(maxDays)d"))
        }
        return .success(.seconds(seconds))
    }
}
