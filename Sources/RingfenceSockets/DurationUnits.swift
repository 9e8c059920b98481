/// `Duration` in the units the kernel, Dispatch and reports take. Swift's `Duration` gives only
/// seconds and attoseconds; these conversions were otherwise written out at every call.
extension Duration {
    /// Whole nanoseconds, rounded down.
    public var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }

    /// Whole milliseconds, rounded down: for log lines.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    /// Seconds as a `Double`, for rates and reports (`age_seconds`, `duration_ms`).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
