/// Prometheus's text exposition format (version 0.0.4), built family by family: `# HELP` and
/// `# TYPE` once per family, then its samples, label values escaped.
///
/// Hand-written: there is no Swift Prometheus client in the mirror we build from, and the
/// format is a few lines of escaping. Counter names end in `_total`, by convention; the caller
/// names them.
public struct PrometheusText: Sendable {
    public enum MetricType: String, Sendable {
        case counter
        case gauge
    }

    /// One sample: its labels in order, and its value.
    public struct Sample: Sendable {
        public var labels: [(String, String)]
        public var value: Value

        public init(_ labels: [(String, String)] = [], _ value: Value) {
            self.labels = labels
            self.value = value
        }
    }

    /// Counters print as exact integers (a `UInt64` never goes through `Double`).
    public enum Value: Sendable {
        case integer(UInt64)
        case signed(Int64)
        case real(Double)
    }

    public private(set) var text = ""

    public init() {}

    public mutating func family(_ name: String, _ type: MetricType, help: String, _ samples: [Sample]) {
        assert(Self.isName(name, colons: true), "bad metric name \(name)")
        text += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(type.rawValue)\n"
        for sample in samples {
            text += name
            if !sample.labels.isEmpty {
                text += "{"
                text += sample.labels.map { key, value in
                    assert(Self.isName(key, colons: false), "bad label name \(key)")
                    return "\(key)=\"\(Self.escapeLabel(value))\""
                }.joined(separator: ",")
                text += "}"
            }
            text += " \(Self.format(sample.value))\n"
        }
    }

    static func format(_ value: Value) -> String {
        switch value {
        case .integer(let number): return "\(number)"
        case .signed(let number): return "\(number)"
        case .real(let number):
            if number.isNaN { return "NaN" }
            if number.isInfinite { return number > 0 ? "+Inf" : "-Inf" }
            if number == number.rounded(), abs(number) < 1e15 { return "\(Int64(number))" }
            return "\(number)"
        }
    }

    static func escapeHelp(_ text: String) -> String {
        text.replacingAll("\\", "\\\\").replacingAll("\n", "\\n")
    }

    static func escapeLabel(_ text: String) -> String {
        text.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"").replacingAll("\n", "\\n")
    }

    static func isName(_ name: String, colons: Bool) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func letter(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || (colons && c == ":")
        }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, _ replacement: String) -> String {
        guard contains(target) else { return self }
        var out = ""
        for character in self {
            if character == target { out += replacement } else { out.append(character) }
        }
        return out
    }
}
