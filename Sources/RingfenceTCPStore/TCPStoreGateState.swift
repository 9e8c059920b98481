/// Where a `TCPStoreGate` is in the client's byte stream.
///
/// Every state carries what the next byte means, so each byte is looked at once.
enum TCPStoreGateState: Hashable, Sendable {
    /// Between requests: the next byte is a command code.
    case expectingCode
    /// Reading the fixed-size `field` of the request `plan` describes; its bytes so far are in the
    /// gate's field accumulator (at most 8 bytes, never released before the field is accepted).
    case readingField(TCPStoreField, TCPStorePlan)
    /// Passing through `remaining` payload bytes of an accepted key or value, then continuing `plan`.
    case streaming(remaining: UInt64, TCPStorePlan)
    /// A rule was broken; nothing more is released.
    case failed(TCPStoreViolation)
}
