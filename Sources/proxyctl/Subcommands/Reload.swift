import ArgumentParser
import RingfenceControl
import RingfenceStatus

#if canImport(Glibc)
import Glibc
#endif

/// `proxyctl reload [--dry-run] [--policy PATH]`: the running daemon re-reads its policy (or
/// PATH) and applies it, or with `--dry-run` says what it would change.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the running proxyd apply its policy file again (or another one).",
        discussion: """
            The daemon parses and validates the file, works out the difference, changes the nftables \
            table in place (only the set elements that differ; chains rewritten when guards change), \
            then updates its guards in place. Connections of peers the new policy no longer allows \
            are closed and listed; all others carry on. On any error nothing \
            changes and every problem is printed as FILE:LINE:COL: key.path: message (exit 1).
            """)

    @Flag(name: .long, help: "Change nothing; list what a reload would do, including the connections it would cut.")
    var dryRun = false

    @Option(name: .long, help: "Apply this policy file instead of the daemon's own; it becomes the daemon's policy file.")
    var policy: String?

    @OptionGroup var control: ControlOptions

    func run() throws {
        let path = policy.map(absolute)
        let reply = try control.send(ControlRequest(command: .reload, dryRun: dryRun, policy: path), policy: path)
        if control.json { return control.printJSON(reply) }
        guard let report = reply.reload else { return }
        print(Self.describe(report))
    }

    static func describe(_ report: ReloadReport) -> String {
        var lines: [String] = []
        let verb = report.dryRun ? "would" : "did"
        lines.append(
            "\(report.dryRun ? "dry run" : "reloaded"): \(report.policy) (\(Table.decimal(report.durationMs, places: 1)) ms)")
        func names(_ list: [String]) -> String { list.isEmpty ? "-" : list.joined(separator: ", ") }
        lines.append("  guards added:     \(names(report.added))")
        lines.append("  guards removed:   \(names(report.removed))")
        lines.append("  guards restarted: \(names(report.restarted))")
        lines.append("  guards updated:   \(names(report.updated))")
        lines.append("  rules: \(report.rules.removed.count) line(s) removed, \(report.rules.added.count) added")
        for line in report.rules.removed.prefix(20) { lines.append("    - \(line)") }
        for line in report.rules.added.prefix(20) { lines.append("    + \(line)") }
        let more = report.rules.removed.count + report.rules.added.count - min(report.rules.removed.count, 20)
            - min(report.rules.added.count, 20)
        if more > 0 { lines.append("    … \(more) more (--json lists them all)") }
        lines.append("  connections \(verb == "would" ? "that would be cut" : "cut"): \(report.cut.count)")
        for cut in report.cut {
            lines.append("    \(cut.guardName) \(Table.address(cut.peer, cut.port)) id=\(cut.id) (\(cut.reason.rawValue))")
        }
        return lines.joined(separator: "\n")
    }

    private func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + path
    }
}
