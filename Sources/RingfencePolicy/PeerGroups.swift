import RingfenceAddresses

/// Resolves `[peers]` groups and `allow` lists, where an entry is an address, a CIDR block, a
/// reference `@group` to another group, a DNS name `dns:NAME` or `lws:group` (the pods of this
/// pod's LeaderWorkerSet group, from `environment`). Undefined references, reference cycles and
/// bad names are reported; a group that cannot be resolved contributes nothing (fail closed).
struct PeerGroups {
    /// Each group's entries as written, with their array index for error positions.
    private let definitions: [String: [(index: Int, entry: String)]]
    private let sink: DiagnosticSink
    private let environment: PolicyEnvironment
    private var resolved: [String: PeerSet] = [:]
    private var failed: Set<String> = []

    init(definitions: [String: [(index: Int, entry: String)]], environment: PolicyEnvironment, sink: DiagnosticSink) {
        self.definitions = definitions
        self.environment = environment
        self.sink = sink
    }

    var names: [String] { definitions.keys.sorted() }

    /// Every group, resolved. Reports each undefined reference and cycle once.
    mutating func resolveAll() -> [String: PeerSet] {
        for name in names { _ = resolve(name, stack: []) }
        return resolved
    }

    /// Resolves an `allow`-style list at `path` (for example `guard[0].allow`).
    mutating func resolveList(_ entries: [(index: Int, entry: String)], path: String) -> PeerSet {
        var blocks: [CIDR] = []
        var sets: [PeerSet] = []
        for (index, entry) in entries {
            let elementPath = "\(path)[\(index)]"
            if entry.hasPrefix("@") {
                let name = String(entry.dropFirst())
                guard definitions[name] != nil else {
                    sink.report(elementPath, undefinedMessage(name))
                    continue
                }
                if let set = resolve(name, stack: []) { sets.append(set) }
            } else {
                _ = add(entry, path: elementPath, to: &blocks, &sets)
            }
        }
        return sets.reduce(PeerSet(addresses: AddressSet(blocks))) { $0.union($1) }
    }

    /// Adds an address or block entry to `blocks`, a `dns:` or `lws:` entry's names to `sets`
    /// (blocks are gathered and made one set at the end: a million of them, one at a time,
    /// would be unions without end).
    /// - Returns: false when the entry is refused (reported at `path`).
    private func add(_ entry: String, path: String, to blocks: inout [CIDR], _ sets: inout [PeerSet]) -> Bool {
        if entry.hasPrefix("dns:") || entry.hasPrefix("lws:") {
            guard let names = peerNames(entry, path: path) else { return false }
            sets.append(PeerSet(names: names))
            return true
        }
        do throws(AddressParseError) {
            blocks.append(try CIDR(parsing: entry))
            return true
        } catch {
            sink.report(path, error.description)
            return false
        }
    }

    /// The names a `dns:NAME` or `lws:group` entry stands for; nil when it is refused (reported
    /// at `path`).
    private func peerNames(_ entry: String, path: String) -> Set<PeerName>? {
        do throws(PeerNameError) {
            if entry.hasPrefix("dns:") {
                return [try PeerName(validating: String(entry.dropFirst(4)))]
            }
            if entry == "lws:group" {
                return Set(try LWSGroup(environment: environment).names)
            }
            sink.report(path, "unknown entry '\(entry)': the one lws: entry is lws:group")
        } catch {
            sink.report(path, error.message)
        }
        return nil
    }

    private func undefinedMessage(_ name: String) -> String {
        let known = names.isEmpty ? "none are defined in [peers]" : "defined: " + names.joined(separator: ", ")
        return "undefined peer group '@\(name)' (\(known))"
    }

    private mutating func resolve(_ name: String, stack: [String]) -> PeerSet? {
        if let done = resolved[name] { return done }
        if failed.contains(name) { return nil }
        guard let entries = definitions[name] else { return nil }
        var blocks: [CIDR] = []
        var sets: [PeerSet] = []
        var ok = true
        for (index, entry) in entries {
            let elementPath = "peers.\(name)[\(index)]"
            if entry.hasPrefix("@") {
                let target = String(entry.dropFirst())
                if target == name || stack.contains(target) {
                    let cycle = (stack.drop { $0 != target } + [name, target]).map { "@\($0)" }
                    sink.report(elementPath, "peer group reference cycle: " + cycle.joined(separator: " -> "))
                    ok = false
                } else if definitions[target] == nil {
                    sink.report(elementPath, undefinedMessage(target))
                    ok = false
                } else if let set = resolve(target, stack: stack + [name]) {
                    sets.append(set)
                } else {
                    ok = false
                }
            } else if !add(entry, path: elementPath, to: &blocks, &sets) {
                ok = false
            }
        }
        guard ok else {
            failed.insert(name)
            return nil
        }
        let set = sets.reduce(PeerSet(addresses: AddressSet(blocks))) { $0.union($1) }
        resolved[name] = set
        return set
    }
}
