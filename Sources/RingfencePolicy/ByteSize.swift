/// A size in bytes, written in a policy as an integer or as a string with a unit
/// (`"256MiB"`, `"4 KiB"`, `"512B"`). Units are powers of 1024; `KB`/`MB` are refused with a hint,
/// since guessing between 1000 and 1024 is how limits end up wrong by 5 %.
public struct ByteSize: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    public static func kibibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 10) }
    public static func mebibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 20) }
    public static func gibibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 30) }

    /// Parses `"<digits>[ ]<unit>"` with unit B, KiB, MiB or GiB (no unit means bytes).
    /// - Returns: the size, or a message that says what is wrong.
    public static func parse(_ text: String) -> Result<ByteSize, PolicyValueError> {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count).drop { $0 == " " }
        guard !digits.isEmpty, let count = Int(digits) else {
            return .failure(PolicyValueError("'\(text)' is not a size; write a whole number with B, KiB, MiB or GiB"))
        }
        let shift: Int
        switch unit {
        case "", "B": shift = 0
        case "KiB": shift = 10
        case "MiB": shift = 20
        case "GiB": shift = 30
        case "KB", "kB", "MB", "GB", "K", "M", "G":
            return .failure(PolicyValueError("'\(text)': use KiB, MiB or GiB (sizes are powers of 1024)"))
        default:
            return .failure(PolicyValueError("'\(text)' has an unknown unit '\(unit)'; use B, KiB, MiB or GiB"))
        }
        let (value, overflow) = count.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow, value < (1 << 50) else {
            return .failure(PolicyValueError("'\(text)' is too large"))
        }
        return .success(ByteSize(bytes: value))
    }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    /// The largest exact unit: `256MiB`, `1536KiB`, `100B`.
    public var description: String {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes != 0 && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return "\(bytes)B"
    }
}

/// What is wrong with one value of a policy: a message for the person who wrote it.
public struct PolicyValueError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
