import RingfenceAddresses
import TOMLKit

extension Policy {
    /// Reads and validates the policy file at `path`.
    /// - Throws: `PolicyError` with every problem of the file, each with its position where known.
    public static func load(path: String, environment: PolicyEnvironment = .process) throws(PolicyError) -> Policy {
        let text: String
        switch PolicyFile.read(path) {
        case .success(let read): text = read
        case .failure(let problem):
            throw PolicyError(diagnostics: [PolicyDiagnostic(file: path, keyPath: "file", message: problem.description)])
        }
        return try parse(text, file: path, environment: environment)
    }

    /// Parses and validates policy text; `file` names it in diagnostics, `environment` gives
    /// `lws:group` its names.
    /// - Throws: `PolicyError` with every problem found, in document order where positions are known.
    public static func parse(_ text: String, file: String, environment: PolicyEnvironment = .process) throws(PolicyError) -> Policy {
        if let found = TOMLPrecheck.firstProblem(in: text) {
            throw PolicyError(diagnostics: [
                PolicyDiagnostic(file: file, line: found.line, column: found.column, keyPath: "toml", message: found.message)
            ])
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw PolicyError(diagnostics: [
                PolicyDiagnostic(
                    file: file, line: error.source.begin.line, column: error.source.begin.column,
                    keyPath: "toml", message: error.description)
            ])
        } catch {
            throw PolicyError(diagnostics: [PolicyDiagnostic(file: file, keyPath: "toml", message: "\(error)")])
        }
        // TOMLKit 0.6.0's TOMLTable never frees the toml++ document it wraps (it has no deinit):
        // without this, every parse (start, each reload, `proxyctl check`) would leak the whole
        // tree, about 115 bytes per CIDR of the policy. The policy read from it holds no TOMLKit
        // values, so the tree is emptied once read (docs/reliability.md, "Soak").
        defer { root.clear() }
        let sink = DiagnosticSink()
        let policy = PolicyParser(sink: sink, file: file, environment: environment).read(root)
        // Scanning the text for positions costs as much as parsing it (a third of a reload of a
        // 10,000-CIDR policy): done only when there is something to place.
        func located(_ found: [(path: String, message: String)], warnings: Bool = false) -> [PolicyDiagnostic] {
            guard !found.isEmpty else { return [] }
            let locator = SourceLocator(text: text)
            let diagnostics = found.map { problem in
                let position = locator.position(of: problem.path)
                return PolicyDiagnostic(
                    file: file, line: position?.line, column: position?.column,
                    keyPath: problem.path, message: problem.message, isWarning: warnings)
            }
            return diagnostics.sorted { ($0.line ?? .max, $0.column ?? .max) < ($1.line ?? .max, $1.column ?? .max) }
        }
        guard sink.isEmpty, var policy else {
            throw PolicyError(diagnostics: located(sink.problems))
        }
        policy.warnings = located(sink.warnings, warnings: true)
        return policy
    }
}

/// Turns a parsed TOML document into a `Policy`, reporting every problem to the sink.
struct PolicyParser {
    let sink: DiagnosticSink
    let file: String
    let environment: PolicyEnvironment

    func read(_ root: TOMLTable) -> Policy? {
        var document = TableReader(root, path: "", sink: sink)
        let firewall = readFirewall(subtable(&document, "firewall"))
        let daemon = readDaemon(subtable(&document, "daemon"))
        var groups = PeerGroups(
            definitions: readPeerDefinitions(subtable(&document, "peers")), environment: environment, sink: sink)
        let peerGroups = groups.resolveAll().mapValues(\.addresses)
        var guards: [(index: Int, item: Guard)] = []
        var names: [String: Int] = [:]
        var publicIndices: [Int: [UInt16: Int]] = [:]
        if let value = document.raw("guard") {
            if let array = value.array {
                for index in 0..<array.count {
                    guard let table = array[index].table else {
                        sink.report("guard[\(index)]", "expected a table; write each guard as [[guard]]")
                        continue
                    }
                    // Names are checked here, so that a duplicate is reported even when a guard has other faults.
                    if let name = table["name"]?.string {
                        if let first = names[name] {
                            sink.report("guard[\(index)].name", "duplicate guard name '\(name)' (first used by guard[\(first)])")
                        } else {
                            names[name] = index
                        }
                    }
                    var reader = GuardReader(TableReader(table, path: "guard[\(index)]", sink: sink))
                    if let item = reader.read(groups: &groups) { guards.append((index, item)) }
                    publicIndices[index] = reader.publicIndices
                }
            } else {
                sink.report("guard", "expected an array of tables; write each guard as [[guard]], not [guard]")
            }
        }
        if !document.has("guard") {
            // An empty or truncated file must not pass for "fence nothing": that would open every port.
            sink.report("guard", "the policy has no [[guard]]; a policy must fence at least one port")
        }
        document.reportUnknownKeys("the policy (its sections are [firewall], [daemon], [peers] and [[guard]])")
        checkPorts(guards)
        checkHostGuards(guards, publicIndices: publicIndices)
        return Policy(
            source: file, firewall: firewall, daemon: daemon, peerGroups: peerGroups, guards: guards.map(\.item))
    }

    private func subtable(_ reader: inout TableReader, _ key: String) -> TableReader? {
        guard let value = reader.raw(key) else { return nil }
        guard let table = value.table else {
            sink.report(key, "expected a table [\(key)], found \(TableReader.describe(value.type))")
            return nil
        }
        return TableReader(table, path: key, sink: sink)
    }

    private func readFirewall(_ reader: TableReader?) -> FirewallSettings {
        var settings = FirewallSettings()
        guard var reader else { return settings }
        if let table = reader.string("table") {
            if Self.isIdentifier(table, extra: "_", maxLength: 32) {
                settings.table = table
            } else {
                sink.report("firewall.table", "'\(table)' is not a valid table name (a letter, then letters, digits or _; at most 32)")
            }
        }
        settings.apply = reader.bool("apply", default: settings.apply)
        settings.deny = reader.choice("deny", default: settings.deny)
        settings.removeOnExit = reader.bool("remove_on_exit", default: settings.removeOnExit)
        reader.reportUnknownKeys("[firewall]")
        return settings
    }

    private func readDaemon(_ reader: TableReader?) -> DaemonSettings {
        var settings = DaemonSettings()
        guard var reader else { return settings }
        if let path = reader.string("control_socket") {
            if path.hasPrefix("/") && path.utf8.count < 108 {
                settings.controlSocket = path
            } else {
                sink.report("daemon.control_socket", "'\(path)' must be an absolute path shorter than 108 bytes")
            }
        }
        settings.metricsListen = reader.parsed("metrics_listen", default: Endpoint?.none) {
            Endpoint.parse($0).map { $0 }
        }
        settings.listenerWatch = reader.choice("listener_watch", default: settings.listenerWatch)
        settings.listenerPollInterval = reader.duration("listener_poll_interval", default: settings.listenerPollInterval)
        if settings.listenerPollInterval > .seconds(1) {
            sink.report("daemon.listener_poll_interval", "at most 1s: a reader could reach an XPUB before its broker for that long")
        }
        settings.watch = reader.bool("watch", default: settings.watch)
        settings.dnsRefresh = reader.duration("dns_refresh", default: settings.dnsRefresh)
        if settings.dnsRefresh < .seconds(1) || settings.dnsRefresh > .seconds(3600) {
            sink.report("daemon.dns_refresh", "from 1s to 1h: how often proxyd resolves the policy's dns: and lws:group names again")
        }
        reader.reportUnknownKeys("[daemon]")
        return settings
    }

    private func readPeerDefinitions(_ reader: TableReader?) -> [String: [(index: Int, entry: String)]] {
        guard var reader else { return [:] }
        var definitions: [String: [(index: Int, entry: String)]] = [:]
        for name in reader.table.keys.sorted() {
            guard Self.isIdentifier(name, extra: "_-", maxLength: 64) else {
                _ = reader.raw(name)
                sink.report("peers.\(name)", "'\(name)' is not a valid group name (a letter, then letters, digits, _ or -)")
                continue
            }
            if let entries = reader.stringArray(name) {
                definitions[name] = entries.map { (index: $0.index, entry: $0.value) }
            }
        }
        return definitions
    }

    /// Two guards on one port (guarded or listening) would make the rules ambiguous.
    private func checkPorts(_ guards: [(index: Int, item: Guard)]) {
        var owners: [UInt16: String] = [:]
        for (index, item) in guards {
            let portKey = item.kind == .firewall && item.ports.count > 1 ? "ports" : "port"
            var claims = item.ports.map { (port: $0, path: "guard[\(index)].\(portKey)", role: "guarded") }
            if let listen = item.listenPort {
                claims.append((listen, "guard[\(index)].listen_port", "listen"))
            }
            for claim in claims {
                if let owner = owners[claim.port] {
                    sink.report(claim.path, "port \(claim.port) is already used as \(owner)")
                } else {
                    owners[claim.port] = "the \(claim.role) port of guard '\(item.name)'"
                }
            }
        }
    }

    /// At most one host guard, and none of its public ports guarded (or listened on) by another
    /// guard: a port cannot be both open to everyone and fenced.
    private func checkHostGuards(_ guards: [(index: Int, item: Guard)], publicIndices: [Int: [UInt16: Int]]) {
        let hosts = guards.filter { $0.item.kind == .host }
        guard let first = hosts.first, case .host(let settings) = first.item.settings else { return }
        for extra in hosts.dropFirst() {
            sink.report(
                "guard[\(extra.index)].kind",
                "a policy has at most one host guard; guard[\(first.index)] '\(first.item.name)' is one already")
        }
        var owners: [UInt16: String] = [:]
        for (_, item) in guards where item.kind != .host {
            for port in item.ports { owners[port] = "guarded by guard '\(item.name)'" }
            if let listen = item.listenPort { owners[listen] = "the listen port of guard '\(item.name)'" }
        }
        for (position, port) in settings.publicPorts.enumerated() {
            guard let owner = owners[port] else { continue }
            let index = publicIndices[first.index]?[port] ?? position
            sink.report(
                "guard[\(first.index)].public[\(index)]",
                "port \(port) is \(owner); a public port is open to everyone and cannot be guarded too")
        }
    }

    /// A letter, then letters, digits or the `extra` characters.
    static func isIdentifier(_ text: String, extra: String, maxLength: Int) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic,
            text.utf8.count <= maxLength
        else { return false }
        return text.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || extra.unicodeScalars.contains($0))
        }
    }
}
