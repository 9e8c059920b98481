import Testing

/// A `/metrics` page read back strictly by Prometheus's text format (0.0.4): `# HELP` and
/// `# TYPE` at most once per family and before its samples, each sample `name{labels} value`
/// with escaped label values and a number. A line that breaks the format is recorded in
/// `problems`.
struct PrometheusPage {
    struct Sample: Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var helps: [String: String] = [:]
    var types: [String: String] = [:]
    var samples: [Sample] = []
    var problems: [String] = []

    init(_ text: String) {
        if !text.isEmpty && !text.hasSuffix("\n") { problems.append("no final newline") }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            read(String(line))
        }
    }

    private mutating func read(_ line: String) {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
            let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, Self.isName(String(parts[0])) else { return problems.append(line) }
            let name = String(parts[0])
            if line.hasPrefix("# HELP ") {
                if helps[name] != nil || samples.contains(where: { $0.name == name }) {
                    problems.append("HELP after samples or twice: \(line)")
                }
                helps[name] = String(parts[1])
            } else {
                if types[name] != nil || samples.contains(where: { $0.name == name }) {
                    problems.append("TYPE after samples or twice: \(line)")
                }
                guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                    return problems.append(line)
                }
                types[name] = String(parts[1])
            }
            return
        }
        guard let sample = Self.sample(line) else { return problems.append(line) }
        if types[sample.name] == nil { problems.append("sample before its TYPE: \(line)") }
        samples.append(sample)
    }

    private static func sample(_ line: String) -> Sample? {
        var rest = Substring(line)
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard isName(String(name)) else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                let key = rest.prefix { $0 != "=" }
                guard isName(String(key)), !key.contains(":") else { return nil }
                rest = rest.dropFirst(key.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                var value = ""
                while let character = rest.first, character != "\"" {
                    rest = rest.dropFirst()
                    if character == "\\" {
                        switch rest.first {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: return nil
                        }
                        rest = rest.dropFirst()
                    } else {
                        value.append(character)
                    }
                }
                guard rest.first == "\"", labels[String(key)] == nil else { return nil }
                labels[String(key)] = value
                rest = rest.dropFirst()
                if rest.first == "," { rest = rest.dropFirst() }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " ", let value = Double(rest.dropFirst()) else { return nil }
        return Sample(name: String(name), labels: labels, value: value)
    }

    private static func isName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first == "_" || first == ":" else { return false }
        return name.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" || $0 == ":" }
    }

    /// The value of the one sample with `name` and exactly `labels`, if there is one.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let found = samples.filter { $0.name == name && $0.labels == labels }
        return found.count == 1 ? found[0].value : nil
    }

    func series(_ name: String) -> [Sample] {
        samples.filter { $0.name == name }
    }
}
