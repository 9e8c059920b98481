import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl listeners`: the host's attack surface as proxyd sees it — every TCP listener of
/// its namespace, whose it is, what it speaks (as far as discovery probed it), and what covers it.
struct Listeners: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every TCP listener of this host: owner, class, and the guard that covers it.")

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .listeners), policy: nil)
        if control.json { return control.printJSON(reply) }
        let rows = reply.listeners ?? []
        guard !rows.isEmpty else { return print("no TCP listeners") }
        var table = Table("LISTENER", "PID", "PROCESS", "CLASS", "COVERED BY", "READERS")
        var direct = 0
        for row in rows {
            let kind = row.listenerClass + (row.socketType.map { " \($0)" } ?? "")
            var coverage = row.coverage.rawValue + (row.guardName.map { " \($0)" } ?? "")
            if row.audit { coverage += " (audit)" }
            var readers = "-"
            if let brokered = row.readersBrokered {
                readers = "\(brokered) brokered, \(row.directConnections ?? 0) direct"
                direct += row.directConnections ?? 0
            }
            table.add(
                Table.address(row.address, row.port), row.pid.map(String.init) ?? "?", String((row.process ?? "?").prefix(40)),
                kind, coverage, readers)
        }
        print(table.text)
        if direct > 0 {
            print(
                "\nwarning: \(direct) reader connection(s) reached an XPUB before its broker: they are direct, not brokered."
                    + "\nRestart the engine with proxyd running (see docs/discovery.md §6).")
        }
    }
}
