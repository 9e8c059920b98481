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
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }

    @Test func repeatedParsesOfALargePolicyDoNotKeepTheirDocuments() throws {
        for _ in 0..<3 {  // the allocator's own growth first
            #expect(try Policy.parse(Self.text, file: "big.toml").guards.count == 1)
        }
        let parses = 25
        let before = try Self.residentBytes()
        for _ in 0..<parses {
            _ = try Policy.parse(Self.text, file: "big.toml")
        }
        let grown = try Self.residentBytes() - before
        // Kept documents would be about 25 x 575 KiB = 14 MiB. What TOMLKit still leaks per parse
        // (a copy of every string value read and of every table's keys, about 14 bytes a CIDR:
        // 1.7 MiB here) and other tests running at the same time stay well under 7 MiB.
        #expect(grown < 7 << 20, "RSS grew \(grown >> 10) KiB over \(parses) parses of a \(Self.cidrs)-CIDR policy")
    }
}
