// Policy load plus render for a policy of N CIDRs (default 100,000), and the membership-lookup
// rate of the resulting address set, against a linear scan of the same blocks as the direct path.
//
//     swift run -c release PolicyBenchmark [N]
//
// Prints one table; each figure is the best of 3 runs.

import Dispatch
import RingfenceAddresses
import RingfenceFirewall
import RingfencePolicy

let count = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 100_000

/// Deterministic pseudo-random numbers (xorshift), so runs are comparable.
struct XorShift: RandomNumberGenerator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

var random = XorShift()
var entries: [String] = []
entries.reserveCapacity(count)
for index in 0..<count {
    if index % 10 == 9 {
        // One in ten entries is IPv6.
        let high = UInt16.random(in: 0...UInt16.max, using: &random)
        entries.append("fd00:\(String(high, radix: 16)):\(String(index & 0xffff, radix: 16))::/64")
    } else {
        let value = UInt32.random(in: 0...UInt32.max, using: &random)
        let prefix = Int.random(in: 20...32, using: &random)
        let masked = prefix == 0 ? 0 : value & (~0 << UInt32(32 - prefix))
        entries.append("\(masked >> 24).\((masked >> 16) & 255).\((masked >> 8) & 255).\(masked & 255)/\(prefix)")
    }
}
let text = """
    [peers]
    big = [
    \(entries.map { "  \"\($0)\"," }.joined(separator: "\n"))
    ]

    [[guard]]
    name = "store"
    kind = "firewall"
    port = 29500
    allow = ["@big"]
    """

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func best(_ runs: Int = 3, _ body: () throws -> Void) rethrows -> Double {
    var times: [Double] = []
    for _ in 0..<runs { times.append(try seconds(body)) }
    return times.min()!
}

var policy: Policy!
var script = ""
let parseTime = try best { policy = try Policy.parse(text, file: "bench.toml") }
let renderTime = best { script = RulesetRenderer.render(policy) }
let set = policy.guards[0].allow

// Lookups: random IPv4 probes through the interval set, and (the direct path) through a linear
// scan of the parsed blocks, on fewer probes because it is O(n).
let blocks = try entries.map { try CIDR(parsing: $0) }
let probes = (0..<1_000_000).map { _ in IPAddress.v4(UInt32.random(in: 0...UInt32.max, using: &random)) }
var hits = 0
let lookupTime = best {
    hits = 0
    for probe in probes where set.contains(probe) { hits += 1 }
}
let scanProbes = probes.prefix(200)
var scanHits = 0
let scanTime = best {
    scanHits = 0
    for probe in scanProbes where blocks.contains(where: { $0.first <= probe && probe <= $0.last }) { scanHits += 1 }
}
let setRate = Double(probes.count) / lookupTime
let scanRate = Double(scanProbes.count) / scanTime

func format(_ value: Double, _ digits: Int = 3) -> String {
    if digits == 0 { return String(Int(value.rounded())) }
    let scale = (0..<digits).reduce(1.0) { acc, _ in acc * 10 }
    return String(Double((value * scale).rounded()) / scale)
}

print("policy of \(count) CIDRs -> \(set.ipv4.count) IPv4 + \(set.ipv6.count) IPv6 intervals, script \(script.utf8.count / 1024) KiB")
print("| step | time (s, best of 3) |")
print("|---|---|")
print("| parse + validate + merge | \(format(parseTime)) |")
print("| render nftables script | \(format(renderTime)) |")
print("| load + render | \(format(parseTime + renderTime)) |")
print("")
print("| membership lookup | lookups/s |")
print("|---|---|")
print("| interval set (binary search) | \(format(setRate / 1e6, 2))M |")
print("| linear scan of the blocks (direct) | \(format(scanRate / 1e3, 2))k |")
print("| ratio set/scan | \(format(setRate / scanRate, 0))x |")
print("(hits: \(hits) of \(probes.count); target: load + render under 1 s)")
