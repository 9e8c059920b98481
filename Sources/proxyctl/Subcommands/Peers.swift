import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl peers`: every live connection of every guard, by peer: what it has queued against
/// its high-water marks, and what it has moved.
struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the running proxyd's live connections by guard and peer, with queues and counters.")

    @Option(name: .long, help: "A policy file, only to find its [daemon] control_socket.")
    var policy: String?

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .peers), policy: policy)
        if control.json { return control.printJSON(reply) }
        print(Self.describe(reply.peers ?? []))
    }

    static func describe(_ connections: [ConnectionStatus]) -> String {
        guard !connections.isEmpty else { return "no live connections" }
        var table = Table(
            "GUARD", "PEER", "ID", "STATE", "AGE", "QUEUED MSGS", "QUEUED BYTES", "FROM PEER", "TO PEER", "DELIVERED",
            "DROPPED", "TOPICS")
        let sorted = connections.sorted { ($0.guardName, $0.peer, $0.id) < ($1.guardName, $1.peer, $1.id) }
        for item in sorted {
            let broker = item.hwmMessages != nil
            table.add(
                item.guardName, Table.address(item.peer, item.port), "\(item.id)", item.state,
                Table.duration(seconds: item.ageSeconds),
                broker ? "\(item.queuedMessages)/\(item.hwmMessages!)" : "-",
                broker ? "\(Table.bytes(item.queuedBytes))/\(Table.bytes(item.hwmBytes ?? 0))" : "-",
                Table.bytes(item.bytesFromPeer), Table.bytes(item.bytesToPeer), broker ? "\(item.delivered)" : "-",
                broker ? "\(item.dropped)" : "-", (item.topics ?? []).map { $0.isEmpty ? "\"\"" : $0 }.joined(separator: ","))
        }
        var peers: [String: Int] = [:]
        for item in connections { peers["\(item.guardName) \(item.peer)", default: 0] += 1 }
        return table.text + "\n\n\(connections.count) connection\(connections.count == 1 ? "" : "s") from \(peers.count) peer\(peers.count == 1 ? "" : "s")"
    }
}
