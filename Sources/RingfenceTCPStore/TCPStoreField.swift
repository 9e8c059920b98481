/// One fixed-size field of a TCPStore request, as the gate reads it.
///
/// Keys and values are read as their `u64` length prefix; the gate then streams the payload the
/// length announced without holding it.
enum TCPStoreField: Hashable, Sendable {
    /// `u64` length of a key, then the key's bytes; capped by `maxKeyBytes`.
    case key
    /// `u64` length of a value, then the value's bytes; capped by `maxValueBytes`.
    case value
    /// `u64` number of entries that follow; capped by `maxKeys`.
    case count
    /// `i64` (ADD delta, BARRIER world size); any value.
    case int64
    /// `u32` PING nonce; any value.
    case nonce
    /// `u32` VALIDATE magic; must equal `TCPStoreCommand.validationMagic`.
    case magic

    /// How many bytes the field occupies on the wire (the length prefix only, for keys and values).
    var width: Int {
        switch self {
        case .key, .value, .count, .int64: 8
        case .nonce, .magic: 4
        }
    }
}
