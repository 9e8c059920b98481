import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl status`: the running daemon and each guard: state, upstream, connections, traffic,
/// drops, evictions and denials.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running proxyd's guards: state, upstream, connections, counters.")

    @Option(name: .long, help: "A policy file, only to find its [daemon] control_socket.")
    var policy: String?

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .status), policy: policy)
        if control.json { return control.printJSON(reply) }
        guard let status = reply.status else { return }
        print(Self.describe(status))
    }

    static func describe(_ status: DaemonStatus) -> String {
        var out = "proxyd pid \(status.pid), up \(Table.duration(seconds: status.uptimeSeconds)), policy \(status.policy)\n"
        out += "fence: table inet \(status.table) (\(status.fenceApplied ? "applied" : "apply = false: not loaded"))"
        out += ", reloads: \(status.reloadsApplied) applied, \(status.reloadsRefused) refused"
        out += ", bans: \(status.bans) now (\(status.bansIssued) set), kicks: \(status.kicks)\n"
        if let descriptors = status.descriptors {
            out += "descriptors: \(descriptors.open) open of \(descriptors.limit)"
            if descriptors.isShort { out += " (RUNNING SHORT: raise LimitNOFILE or lower max_connections)" }
            out += "\n"
        }
        if let discovery = status.discovery {
            out += "discovery: \(discovery.method)"
            if let interval = discovery.pollIntervalMs { out += " every \(Table.decimal(interval, places: 1)) ms" }
            if let reason = discovery.fallbackReason { out += " (no tracepoint: \(reason))" }
            out += ", \(discovery.brokered) XPUB\(discovery.brokered == 1 ? "" : "s") brokered, \(discovery.otherListeners) other listeners"
            out += ", \(discovery.directConnections) direct reader\(discovery.directConnections == 1 ? "" : "s")"
            if discovery.directConnections > 0 { out += " (NOT brokered: see `proxyctl listeners`)" }
            out += "\n"
        }
        if let names = status.names { out += describe(names) }
        out += "\n"
        var table = Table(
            "GUARD", "KIND", "MODE", "PORT", "LISTEN", "STATE", "UPSTREAM", "CONNS", "QUEUED", "FROM PEERS", "TO PEERS",
            "MESSAGES", "DROPS", "EVICTED", "VIOLATIONS", "DENIED", "CUT", "FENCE REFUSED", "AUDIT HITS", "DIRECT")
        for item in status.guards {
            let counters = item.counters
            let upstream =
                item.upstream.state.rawValue + (item.upstream.address.map { " \($0)" } ?? "")
                + (item.upstream.heldSeconds.map { String(format: " (held %.1fs)", $0) } ?? "")
            let queued = item.kind == .zmqXPUB ? "\(item.queuedMessages) msg, \(Table.bytes(item.queuedBytes))" : "-"
            let denied = counters.denied.isEmpty
                ? "0" : "\(counters.deniedTotal) (" + counters.denied.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
            let ports: String
            if item.kind == .host {
                ports = item.publicPorts.isEmpty ? "all" : "all but " + item.publicPorts.map(String.init).joined(separator: ",")
            } else {
                ports = item.ports.map(String.init).joined(separator: ",")
            }
            let kernel = item.state == .kernel
            table.add(
                item.name, item.kind.rawValue, item.mode.rawValue, ports, kernel ? "-" : "\(item.listenPort)", item.state.rawValue,
                kernel ? "-" : upstream, kernel ? "-" : "\(item.connections)/\(item.maxConnections)", queued, Table.bytes(counters.bytesFromPeers),
                Table.bytes(counters.bytesToPeers), item.kind == .zmqXPUB ? "\(counters.messages)" : "-",
                "\(counters.drops)", "\(counters.evictions)", "\(counters.violations)", denied, "\(counters.cutByReload)",
                "\(item.fenceRefused)", "\(item.fenceAudited)", item.directConnections.map(String.init) ?? "-")
        }
        return out + table.text
    }

    /// The peer names: a summary line, then one row per name (what it admits, and why not when
    /// it admits nobody).
    static func describe(_ names: [PeerNameStatus]) -> String {
        let states = ["resolved", "stale", "unresolved", "resolving"].compactMap { state in
            let count = names.count { $0.state == state }
            return count == 0 ? nil : "\(count) \(state)"
        }
        let out = "peer names: \(names.count) (\(states.joined(separator: ", ")))\n"
        var table = Table("  NAME", "STATE", "ADDRESSES", "CONFIRMED", "GUARDS", "NOTE")
        for name in names {
            let note: String
            switch name.state {
            case "stale": note = "lookup failing (\(name.error ?? "?")): last addresses kept"
            case "unresolved": note = "admits nobody until it resolves: \(name.error ?? "?")"
            case "resolving": note = "admits nobody until it resolves"
            default: note = ""
            }
            table.add(
                "  " + name.name, name.state, name.addresses.isEmpty ? "-" : name.addresses.joined(separator: ","),
                name.confirmedSecondsAgo.map { Table.duration(seconds: $0) + " ago" } ?? "never",
                name.guards.joined(separator: ","), note)
        }
        return out + table.text + "\n"
    }
}
