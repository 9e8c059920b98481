import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl audit`: what the kernel fence refused (enforce) or would have refused (audit), by
/// guard, source, protocol and port, busiest first: how an operator reads a day of audit mode
/// before turning a default-deny fence on.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List what the fence refused, or in audit mode would have refused, busiest first.")

    @Option(name: .long, help: "A policy file, only to find its [daemon] control_socket.")
    var policy: String?

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .audit), policy: policy)
        if control.json { return control.printJSON(reply) }
        print(Self.describe(reply.audit ?? []))
    }

    static func describe(_ entries: [AuditEntry]) -> String {
        guard !entries.isEmpty else { return "nothing refused, nor would have been" }
        var table = Table("GUARD", "MODE", "SOURCE", "PROTO", "PORT", "COUNT", "FIRST SEEN", "LAST SEEN")
        for entry in entries {
            table.add(
                entry.guardName, entry.mode == "audit" ? "audit (passed)" : "enforce (refused)", entry.source, entry.protocol,
                "\(entry.port)", "\(entry.count)", entry.firstSeen, entry.lastSeen)
        }
        let sources = Set(entries.map(\.source)).count
        return table.text + "\n\n\(entries.count) source/port pair\(entries.count == 1 ? "" : "s") from \(sources) source\(sources == 1 ? "" : "s")"
    }
}
