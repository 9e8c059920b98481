import Foundation
import Testing

@testable import RingfencePolicy

/// Parsing a policy must not keep its TOML document: TOMLKit 0.6.0's TOMLTable never frees the
/// toml++ tree it wraps, so the parser empties it once read (docs/reliability.md, "Soak").
/// Without that, every parse of a policy of 5,000 CIDRs leaked about 575 KiB (the tree) and
/// proxyd leaked it again on every reload.
@Suite struct PolicyParserMemoryTests {
    static let cidrs = 5_000
    static let text: String = {
        let list = (0..<cidrs).map { "\"10.\($0 >> 8).\($0 & 255).0/24\"" }.joined(separator: ", ")
        return "[peers]\nworkers = [\(list)]\n\n[[guard]]\nname = \"store\"\nkind = \"firewall\"\nport = 29500\nallow = [\"@workers\"]\n"
    }()

    /// VmRSS of this process, in bytes.
    static func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { throw CocoaError(.fileReadCorruptFile) }
        return kib * 1024
    }

    /// Measured in a child process of its own: the other suites run in parallel in this one and
    /// moved its RSS by 25 MiB during the parses in a CI run.
    @Test func repeatedParsesOfALargePolicyDoNotKeepTheirDocuments() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardOutputContent]) {
            let report = PolicyParserMemoryTests.measure()
            _ = report.withCString { write(1, $0, strlen($0)) }
            _exit(0)
        }
        let output = result.map { String(decoding: $0.standardOutputContent, as: UTF8.self) } ?? ""
        let failures = output.split(separator: "\n").filter { $0.hasPrefix(Self.failureMark) }
        #expect(output.contains(Self.doneMark), "the child reported nothing: \(output)")
        for line in failures { Issue.record("\(line.dropFirst(Self.failureMark.count))") }
    }

    static let failureMark = "memory: "
    static let doneMark = "measured\n"

    /// Parses the policy 25 times after 3 to warm the allocator up; what failed, one line each
    /// starting with `failureMark`, then `doneMark`.
    static func measure() -> String {
        var failures: [String] = []
        do {
            for _ in 0..<3 {  // the allocator's own growth first
                let guards = try Policy.parse(text, file: "big.toml").guards.count
                if guards != 1 { failures.append("parsed \(guards) guards, not 1") }
            }
            let parses = 25
            let before = try residentBytes()
            for _ in 0..<parses {
                _ = try Policy.parse(text, file: "big.toml")
            }
            let grown = try residentBytes() - before
            // Kept documents would be about 25 x 575 KiB = 14 MiB. What TOMLKit still leaks per
            // parse (a copy of every string value read and of every table's keys, about 14 bytes
            // a CIDR: 1.7 MiB here) stays well under 7 MiB.
            if grown >= 7 << 20 {
                failures.append("RSS grew \(grown >> 10) KiB over \(parses) parses of a \(cidrs)-CIDR policy")
            }
        } catch {
            failures.append("\(error)")
        }
        return failures.map { "\(failureMark)\($0)\n" }.joined() + doneMark
    }
}
