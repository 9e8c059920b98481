import TOMLKit

/// Typed, reporting access to one TOML table.
///
/// Every accessor records the key as known, reports a wrong type or bad value to the sink and
/// returns nil (or the default) for it, so one pass over a table finds all of its problems.
/// `reportUnknownKeys` then refuses whatever was not asked for: a typo must never be ignored.
struct TableReader {
    let table: TOMLTable
    /// `firewall`, `guard[0]`: the prefix of this table's key paths ("" for the document root).
    let path: String
    let sink: DiagnosticSink
    private(set) var known: Set<String> = []

    init(_ table: TOMLTable, path: String, sink: DiagnosticSink) {
        self.table = table
        self.path = path
        self.sink = sink
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { table.contains(key: key) }

    /// The raw value, marking the key known.
    mutating func raw(_ key: String) -> (any TOMLValueConvertible)? {
        known.insert(key)
        return table[key]
    }

    mutating func requireKey(_ key: String, _ hint: String) {
        if !has(key) { sink.report(path.isEmpty ? key : path, "missing required key '\(key)'\(hint)") }
    }

    private func wrongType(_ key: String, expected: String, found value: any TOMLValueConvertible) {
        sink.report(keyPath(key), "expected \(expected), found \(TableReader.describe(value.type))")
    }

    static func describe(_ type: TOMLType) -> String {
        switch type {
        case .table: return "a table"
        case .array: return "an array"
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a float"
        case .bool: return "a boolean"
        case .date, .time, .dateTime: return "a date or time"
        }
    }

    mutating func string(_ key: String, expected: String = "a string") -> String? {
        guard let value = raw(key) else { return nil }
        guard let string = value.string else {
            wrongType(key, expected: expected, found: value)
            return nil
        }
        return string
    }

    mutating func bool(_ key: String, default fallback: Bool) -> Bool {
        guard let value = raw(key) else { return fallback }
        guard let bool = value.bool else {
            wrongType(key, expected: "true or false", found: value)
            return fallback
        }
        return bool
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = raw(key) else { return nil }
        guard value.type == .int, let int = value.int else {
            wrongType(key, expected: "an integer", found: value)
            return nil
        }
        guard range.contains(int) else {
            sink.report(keyPath(key), "\(int) is out of range (\(range.lowerBound)-\(range.upperBound))")
            return nil
        }
        return int
    }

    mutating func int(_ key: String, default fallback: Int, in range: ClosedRange<Int>) -> Int {
        int(key, in: range) ?? fallback
    }

    mutating func port(_ key: String) -> UInt16? {
        int(key, in: 1...65535).map { UInt16($0) }
    }

    /// An array of distinct port numbers (1-65535); each bad element is reported and skipped.
    /// nil when the key is absent or not an array.
    mutating func portArray(_ key: String, allowEmpty: Bool) -> [UInt16]? {
        portArrayWithIndices(key, allowEmpty: allowEmpty)?.map(\.port)
    }

    /// `portArray`, with each port's index in the array as written (bad elements leave gaps).
    mutating func portArrayWithIndices(_ key: String, allowEmpty: Bool) -> [(index: Int, port: UInt16)]? {
        guard let value = raw(key) else { return nil }
        guard let array = value.array, allowEmpty || !array.isEmpty else {
            sink.report(keyPath(key), "expected \(allowEmpty ? "an" : "a non-empty") array of port numbers")
            return nil
        }
        var ports: [(index: Int, port: UInt16)] = []
        for index in 0..<array.count {
            let element = array[index]
            let elementPath = "\(keyPath(key))[\(index)]"
            guard element.type == .int, let port = element.int else {
                sink.report(elementPath, "expected a port number, found \(TableReader.describe(element.type))")
                continue
            }
            guard (1...65535).contains(port) else {
                sink.report(elementPath, "port \(port) is out of range (1-65535)")
                continue
            }
            if ports.contains(where: { $0.port == UInt16(port) }) {
                sink.report(elementPath, "port \(port) is listed twice")
            } else {
                ports.append((index, UInt16(port)))
            }
        }
        return ports
    }

    /// A value parsed from a string by `parse`, or the default when the key is absent or bad.
    mutating func parsed<T>(
        _ key: String, default fallback: T, expected: String = "a string",
        _ parse: (String) -> Result<T, PolicyValueError>
    ) -> T {
        guard let text = string(key, expected: expected) else { return fallback }
        switch parse(text) {
        case .success(let value): return value
        case .failure(let error):
            sink.report(keyPath(key), error.description)
            return fallback
        }
    }

    /// One of an enum's raw values, or the default when the key is absent or bad.
    mutating func choice<E: RawRepresentable & CaseIterable>(_ key: String, default fallback: E) -> E
    where E.RawValue == String {
        choice(key) ?? fallback
    }

    /// One of an enum's raw values; nil when the key is absent or bad.
    mutating func choice<E: RawRepresentable & CaseIterable>(_ key: String) -> E? where E.RawValue == String {
        let options = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        return parsed(key, default: nil, expected: "one of \(options)") { text in
            if let value = E(rawValue: text) { return .success(value) }
            return .failure(PolicyValueError("'\(text)' is not one of \(options)"))
        }
    }

    /// A size: an integer number of bytes, or a string with a unit.
    mutating func size(_ key: String, default fallback: ByteSize, atLeast minimum: ByteSize = ByteSize(bytes: 1))
        -> ByteSize
    {
        guard let value = raw(key) else { return fallback }
        let size: ByteSize
        if value.type == .int, let int = value.int, int >= 0 {
            size = ByteSize(bytes: int)
        } else if let text = value.string {
            switch ByteSize.parse(text) {
            case .success(let parsed): size = parsed
            case .failure(let error):
                sink.report(keyPath(key), error.description)
                return fallback
            }
        } else {
            wrongType(key, expected: "a size such as \"256MiB\"", found: value)
            return fallback
        }
        guard size >= minimum else {
            sink.report(keyPath(key), "\(size) is below the minimum of \(minimum)")
            return fallback
        }
        return size
    }

    mutating func duration(_ key: String, default fallback: Duration, allowZero: Bool = false) -> Duration {
        let value = parsed(key, default: fallback, expected: "a duration such as \"5s\"", PolicyDuration.parse)
        if value == .zero && !allowZero && has(key) {
            sink.report(keyPath(key), "must be more than zero")
            return fallback
        }
        return value
    }

    /// An array of strings, with each element's index (bad elements are reported and skipped).
    mutating func stringArray(_ key: String) -> [(index: Int, value: String)]? {
        guard let value = raw(key) else { return nil }
        guard let array = value.array else {
            wrongType(key, expected: "an array of strings", found: value)
            return nil
        }
        var result: [(Int, String)] = []
        result.reserveCapacity(array.count)
        for index in 0..<array.count {
            let element = array[index]
            if let string = element.string {
                result.append((index, string))
            } else {
                sink.report("\(keyPath(key))[\(index)]", "expected a string, found \(TableReader.describe(element.type))")
            }
        }
        return result
    }

    /// Reports every key of the table that no accessor asked for.
    /// - Parameter elsewhere: keys that are valid in another context, with where they belong.
    func reportUnknownKeys(_ context: String, elsewhere: [String: String] = [:]) {
        for key in table.keys where !known.contains(key) {
            if let home = elsewhere[key] {
                sink.report(keyPath(key), "'\(key)' is not a key of \(context); it belongs to \(home)")
            } else if let suggestion = TableReader.closest(to: key, among: known) {
                sink.report(keyPath(key), "unknown key '\(key)' in \(context); did you mean '\(suggestion)'?")
            } else {
                sink.report(keyPath(key), "unknown key '\(key)' in \(context)")
            }
        }
    }

    /// The known key within edit distance 2 of `key`, for "did you mean".
    static func closest(to key: String, among candidates: Set<String>) -> String? {
        var best: (name: String, distance: Int)?
        for candidate in candidates.sorted() {
            let distance = editDistance(key, candidate)
            if distance <= 2 && distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        return best?.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8)
        let b = Array(b.utf8)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [Int](repeating: 0, count: b.count + 1)
            current[0] = i
            for j in 1...b.count {
                let substitution: Int = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                let deletion: Int = previous[j] + 1
                let insertion: Int = current[j - 1] + 1
                current[j] = Swift.min(substitution, deletion, insertion)
            }
            previous = current
        }
        return previous[b.count]
    }
}
