/// The size caps a `TCPStoreGate` enforces on each command's declared lengths and counts.
///
/// The gate checks every length and count field against these caps as soon as the field is complete,
/// before any of its bytes are released, so a client can never make the server allocate or wait for
/// more than the caps allow. A negative cap behaves like zero. The policy's keys set them, and
/// refuses any above the libuv server's own (docs/tcpstore.md §5).
public struct TCPStoreLimits: Hashable, Sendable {
    /// The largest key (string field) in bytes; a longer key is a `keyTooLong` violation.
    public var maxKeyBytes: Int
    /// The largest value (bytes field: SET value, COMPARE_SET expected and desired, APPEND, MULTI_SET
    /// values, QUEUE_PUSH) in bytes; a longer value is a `valueTooLong` violation.
    public var maxValueBytes: Int
    /// The largest key count `n` of CHECK, WAIT, MULTI_GET and MULTI_SET; a larger count is a
    /// `tooManyKeys` violation.
    public var maxKeys: Int

    /// Creates limits from the three caps (each inclusive: a field exactly at its cap is accepted).
    public init(maxKeyBytes: Int, maxValueBytes: Int, maxKeys: Int) {
        self.maxKeyBytes = maxKeyBytes
        self.maxValueBytes = maxValueBytes
        self.maxKeys = maxKeys
    }

    /// `maxKeyBytes` as an unsigned cap for comparing with wire lengths (negative becomes 0).
    var keyCap: UInt64 { UInt64(clamping: maxKeyBytes) }
    /// `maxValueBytes` as an unsigned cap for comparing with wire lengths (negative becomes 0).
    var valueCap: UInt64 { UInt64(clamping: maxValueBytes) }
    /// `maxKeys` as an unsigned cap for comparing with wire counts (negative becomes 0).
    var countCap: UInt64 { UInt64(clamping: maxKeys) }
}
