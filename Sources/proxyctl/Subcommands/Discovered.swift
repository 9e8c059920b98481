import ArgumentParser
import RingfenceFirewall

/// `proxyctl discovered GUARD [CHANGE...]` (hidden): reads, and changes in one transaction, a
/// discover guard's run-time sets in the kernel, as proxyd does when it discovers an XPUB. For
/// tests and for looking at a live host; prints the sets as JSON, with how long each change took
/// (µs, `change_us`).
struct Discovered: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read or change a discover guard's run-time nftables sets (for tests and debugging).",
        discussion: "CHANGE is hold:PORT, divert:PORT:LISTEN or release:PORT[:LISTEN]; all apply in one transaction.",
        shouldDisplay: false)

    @Option(help: "The nftables table (inet family).") var table = "ringfence"
    @Flag(help: "Apply each change in a transaction of its own, timing each.") var each = false
    @Argument(help: "The discover guard's name.") var guardName: String
    @Argument(help: "Changes: hold:PORT, divert:PORT:LISTEN, release:PORT[:LISTEN].") var changes: [String] = []

    func validate() throws { _ = try parsedChanges() }

    func run() throws {
        let firewall = try Firewall()
        let changes = try parsedChanges()
        var timings: [Int64] = []
        let clock = ContinuousClock()
        for batch in each ? changes.map({ [$0] }) : (changes.isEmpty ? [] : [changes]) {
            let start = clock.now
            try firewall.change(table: table, discoverGuard: guardName, batch)
            let elapsed = clock.now - start
            timings.append(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
        }
        let held = try firewall.discovered(table: table, discoverGuard: guardName)
        let divert = held.divert.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ")
        print(
            "{\"ports\": \(held.ports.sorted()), \"hold\": \(held.hold.sorted()), \"divert\": {\(divert)}, \"change_us\": \(timings)}")
    }

    private func parsedChanges() throws -> [DiscoveryChange] {
        try changes.map { text in
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            let ports = parts.dropFirst().map { UInt16($0) }
            guard !ports.contains(nil), let port = ports.first ?? nil else {
                throw ValidationError("'\(text)' is not hold:PORT, divert:PORT:LISTEN or release:PORT[:LISTEN]")
            }
            switch (parts[0], ports.count) {
            case ("hold", 1): return .hold(port)
            case ("divert", 2): return .divert(port, to: ports[1]!)
            case ("release", 1): return .release(port, listen: nil)
            case ("release", 2): return .release(port, listen: ports[1])
            default: throw ValidationError("'\(text)' is not hold:PORT, divert:PORT:LISTEN or release:PORT[:LISTEN]")
            }
        }
    }
}
