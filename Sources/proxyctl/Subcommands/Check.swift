import ArgumentParser
import RingfencePolicy

/// `proxyctl check POLICY`: exit 0 when the policy is valid, else every problem on stderr.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a policy file; print every problem as FILE:LINE:COL: key.path: message.")

    @OptionGroup var file: PolicyArgument

    func run() throws {
        let policy = try file.load()
        for warning in policy.warnings { printError(warning.description) }
        let summary = policy.guards.map { item in
            let ports: String
            if case .host(let host) = item.settings {
                ports = host.publicPorts.isEmpty ? "every port, none public" : "every port, public \(host.publicPorts.map(String.init).joined(separator: ","))"
            } else if case .broker(let broker) = item.settings, broker.discover {
                ports = "discovered XPUBs" + (broker.process.map { " of processes matching '\($0)'" } ?? "")
            } else {
                ports = "port \(item.ports.map(String.init).joined(separator: ","))"
            }
            return "\(item.name) (\(item.kind.rawValue)\(item.mode == .audit ? ", audit" : ""), \(ports))"
        }
        print("\(file.policy): ok: \(policy.guards.count) guard\(policy.guards.count == 1 ? "" : "s")"
            + (summary.isEmpty ? "" : ": " + summary.joined(separator: ", ")))
        let names = policy.peerNames
        if !names.isEmpty {
            print("peer names, resolved by proxyd at run time (admitting nobody until they resolve): "
                + names.map(\.name).joined(separator: ", "))
        }
    }
}
