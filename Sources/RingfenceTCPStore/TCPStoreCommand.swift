/// A TCPStore request code (torch 2.x `QueryType`), and the fields each request carries after its code byte.
///
/// The field layout is the whole request grammar the gate needs: a fixed list of head fields, and for
/// the multi-key commands a repeated entry (one key, or a key and a value) that follows the count
/// (docs/tcpstore.md §2, §3).
public enum TCPStoreCommand: UInt8, CaseIterable, Hashable, Sendable {
    /// `u32 magic`; must be the connection's first command.
    case validate = 0
    /// `key, value`.
    case set = 1
    /// `key, expected, desired`.
    case compareSet = 2
    /// `key`.
    case get = 3
    /// `key, i64 delta`.
    case add = 4
    /// `u64 n, n keys`.
    case check = 5
    /// `u64 n, n keys`.
    case wait = 6
    /// No fields.
    case getNumKeys = 7
    /// `key`.
    case deleteKey = 8
    /// `key, value`.
    case append = 9
    /// `u64 n, n keys`.
    case multiGet = 10
    /// `u64 n, n × (key, value)`.
    case multiSet = 11
    /// No fields.
    case cancelWait = 12
    /// `u32 nonce`.
    case ping = 13
    /// `key, value`.
    case queuePush = 14
    /// `key`.
    case queuePop = 15
    /// `key`.
    case queueLen = 16
    /// No fields.
    case listKeys = 17
    /// `key, i64 worldSize`.
    case barrier = 18

    /// The VALIDATE magic, `CE F7 85 3C` on the wire.
    public static let validationMagic: UInt32 = 0x3C85_F7CE

    /// The upper-case name torch uses for the query type, for logs (e.g. "COMPARE_SET").
    public var name: String {
        switch self {
        case .validate: "VALIDATE"
        case .set: "SET"
        case .compareSet: "COMPARE_SET"
        case .get: "GET"
        case .add: "ADD"
        case .check: "CHECK"
        case .wait: "WAIT"
        case .getNumKeys: "GETNUMKEYS"
        case .deleteKey: "DELETE_KEY"
        case .append: "APPEND"
        case .multiGet: "MULTI_GET"
        case .multiSet: "MULTI_SET"
        case .cancelWait: "CANCEL_WAIT"
        case .ping: "PING"
        case .queuePush: "QUEUE_PUSH"
        case .queuePop: "QUEUE_POP"
        case .queueLen: "QUEUE_LEN"
        case .listKeys: "LIST_KEYS"
        case .barrier: "BARRIER"
        }
    }

    /// The field at `index` of the request's fixed head, or nil past its end.
    ///
    /// A switch rather than an array so that walking a plan never allocates.
    func headField(at index: Int) -> TCPStoreField? {
        switch (self, index) {
        case (.validate, 0): .magic
        case (.set, 0), (.append, 0), (.queuePush, 0): .key
        case (.set, 1), (.append, 1), (.queuePush, 1): .value
        case (.compareSet, 0): .key
        case (.compareSet, 1), (.compareSet, 2): .value
        case (.get, 0), (.deleteKey, 0), (.queuePop, 0), (.queueLen, 0): .key
        case (.add, 0), (.barrier, 0): .key
        case (.add, 1), (.barrier, 1): .int64
        case (.check, 0), (.wait, 0), (.multiGet, 0), (.multiSet, 0): .count
        case (.ping, 0): .nonce
        default: nil
        }
    }

    /// The field at `index` of one repeated entry (after a `.count` head field), or nil past its end.
    func entryField(at index: Int) -> TCPStoreField? {
        switch (self, index) {
        case (.check, 0), (.wait, 0), (.multiGet, 0), (.multiSet, 0): .key
        case (.multiSet, 1): .value
        default: nil
        }
    }
}
