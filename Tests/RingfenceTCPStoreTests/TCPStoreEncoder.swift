import RingfenceTCPStore
import RingfenceTestSupport

/// A test-only TCPStore request encoder: builds the exact bytes a torch 2.x client sends, and records
/// where each request starts and where each length or count field sits (for corruption tests).
struct TCPStoreEncoder {
    /// A `u64` length or count field and what it measures.
    struct LengthField: Hashable {
        enum Kind: Hashable { case key, value, count }
        /// Offset of the field's first byte in `bytes`.
        var offset: Int
        var kind: Kind
        /// Index of the request (in `commandStarts`) that contains the field.
        var command: Int
    }

    private(set) var bytes: [UInt8] = []
    private(set) var commandStarts: [Int] = []
    private(set) var lengthFields: [LengthField] = []

    /// The stream offsets at which a request ends (a request boundary), in order.
    var commandEnds: [Int] { Array(commandStarts.dropFirst()) + (commandStarts.isEmpty ? [] : [bytes.count]) }

    // MARK: Primitive fields

    mutating func code(_ command: TCPStoreCommand) { code(command.rawValue) }
    mutating func code(_ raw: UInt8) {
        commandStarts.append(bytes.count)
        bytes.append(raw)
    }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func i64(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func length(_ value: UInt64, _ kind: LengthField.Kind) {
        lengthFields.append(LengthField(offset: bytes.count, kind: kind, command: commandStarts.count - 1))
        u64(value)
    }
    mutating func key(_ text: String) { key(Array(text.utf8)) }
    mutating func key(_ raw: [UInt8]) {
        length(UInt64(raw.count), .key)
        bytes += raw
    }
    mutating func value(_ value: [UInt8]) {
        length(UInt64(value.count), .value)
        bytes += value
    }
    mutating func count(_ n: Int) { length(UInt64(n), .count) }

    /// Overwrites the 8 bytes at `offset` with `value` (little-endian).
    mutating func overwrite(u64 value: UInt64, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + 8, with: $0) }
    }

    // MARK: Requests

    mutating func validate(magic: UInt32 = TCPStoreCommand.validationMagic) { code(.validate); u32(magic) }
    mutating func set(_ k: String, _ v: [UInt8]) { code(.set); key(k); value(v) }
    mutating func compareSet(_ k: String, expected: [UInt8], desired: [UInt8]) {
        code(.compareSet); key(k); value(expected); value(desired)
    }
    mutating func get(_ k: String) { code(.get); key(k) }
    mutating func add(_ k: String, _ delta: Int64) { code(.add); key(k); i64(delta) }
    mutating func check(_ keys: [String]) { code(.check); count(keys.count); keys.forEach { key($0) } }
    mutating func wait(_ keys: [String]) { code(.wait); count(keys.count); keys.forEach { key($0) } }
    mutating func getNumKeys() { code(.getNumKeys) }
    mutating func deleteKey(_ k: String) { code(.deleteKey); key(k) }
    mutating func append(_ k: String, _ v: [UInt8]) { code(.append); key(k); value(v) }
    mutating func multiGet(_ keys: [String]) { code(.multiGet); count(keys.count); keys.forEach { key($0) } }
    mutating func multiSet(_ pairs: [(String, [UInt8])]) {
        code(.multiSet); count(pairs.count); pairs.forEach { key($0.0); value($0.1) }
    }
    mutating func cancelWait() { code(.cancelWait) }
    mutating func ping(_ nonce: UInt32) { code(.ping); u32(nonce) }
    mutating func queuePush(_ k: String, _ v: [UInt8]) { code(.queuePush); key(k); value(v) }
    mutating func queuePop(_ k: String) { code(.queuePop); key(k) }
    mutating func queueLen(_ k: String) { code(.queueLen); key(k) }
    mutating func listKeys() { code(.listKeys) }
    mutating func barrier(_ k: String, worldSize: Int64) { code(.barrier); key(k); i64(worldSize) }

    /// A representative request of `command`, with non-trivial keys and values.
    mutating func sample(_ command: TCPStoreCommand) {
        let v = Array("payload-\(command.rawValue)".utf8)
        switch command {
        case .validate: validate()
        case .set: set("/default_pg/0//cpu//0/0", v)
        case .compareSet: compareSet("/cas", expected: [], desired: v)
        case .get: get("/hello")
        case .add: add("init/", 1)
        case .check: check(["/a", "/bb", ""])
        case .wait: wait(["/rank0", "/rank1"])
        case .getNumKeys: getNumKeys()
        case .deleteKey: deleteKey("/gone")
        case .append: append("/log", v)
        case .multiGet: multiGet(["/x", "/y", "/z"])
        case .multiSet: multiSet([("/x", v), ("/y", []), ("", [0, 1, 2])])
        case .cancelWait: cancelWait()
        case .ping: ping(0x0001_2345)
        case .queuePush: queuePush("/q", v)
        case .queuePop: queuePop("/q")
        case .queueLen: queueLen("/q")
        case .listKeys: listKeys()
        case .barrier: barrier("/barrier", worldSize: 8)
        }
    }

    /// A random well-formed request within `limits` (a VALIDATE with the right magic is among them).
    mutating func random(using rng: inout SeededRandom, within limits: TCPStoreLimits) {
        func randomKey() -> String {
            // Mostly short keys, sometimes exactly at the cap.
            let length = Int.random(in: 0...8, using: &rng) == 0 ? limits.maxKeyBytes : Int.random(in: 0...24, using: &rng)
            return String((0..<length).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7E, using: &rng))) })
        }
        func randomValue() -> [UInt8] {
            let length = Int.random(in: 0...8, using: &rng) == 0 ? limits.maxValueBytes : Int.random(in: 0...64, using: &rng)
            return (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        func randomKeys() -> [String] {
            let n = Int.random(in: 0...5, using: &rng) == 0 ? limits.maxKeys : Int.random(in: 0...4, using: &rng)
            return (0..<n).map { _ in randomKey() }
        }
        let command = TCPStoreCommand.allCases.randomElement(using: &rng)!
        switch command {
        case .validate: validate()
        case .set: set(randomKey(), randomValue())
        case .compareSet: compareSet(randomKey(), expected: randomValue(), desired: randomValue())
        case .get: get(randomKey())
        case .add: add(randomKey(), Int64.random(in: .min ... .max, using: &rng))
        case .check: check(randomKeys())
        case .wait: wait(randomKeys())
        case .getNumKeys: getNumKeys()
        case .deleteKey: deleteKey(randomKey())
        case .append: append(randomKey(), randomValue())
        case .multiGet: multiGet(randomKeys())
        case .multiSet: multiSet(randomKeys().map { ($0, randomValue()) })
        case .cancelWait: cancelWait()
        case .ping: ping(UInt32.random(in: 0 ... .max, using: &rng))
        case .queuePush: queuePush(randomKey(), randomValue())
        case .queuePop: queuePop(randomKey())
        case .queueLen: queueLen(randomKey())
        case .listKeys: listKeys()
        case .barrier: barrier(randomKey(), worldSize: Int64.random(in: .min ... .max, using: &rng))
        }
    }
}
