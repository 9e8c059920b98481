import ArgumentParser
import RingfencePolicy

/// `proxyctl check POLICY`: exit 0 when the policy is valid, else every problem on stderr.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a policy file; print every problem as FILE:LINE:COL: key.path: message.")

    @OptionGroup var file: PolicyArgument

    func run() throws {
        let policy = try file.load()
        let summary = policy.guards.map { "\($0.name) (\($0.kind.rawValue), port \($0.ports.map(String.init).joined(separator: ",")))" }
        print("\(file.policy): ok: \(policy.guards.count) guard\(policy.guards.count == 1 ? "" : "s")"
            + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")))
    }
}
