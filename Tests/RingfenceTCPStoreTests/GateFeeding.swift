import RingfenceTCPStore
import RingfenceTestSupport
import Testing

/// How a test splits a stream into `feed` calls.
enum Chunking: Hashable, CustomStringConvertible {
    /// One call with the whole stream.
    case whole
    /// One call per byte.
    case bytewise
    /// Random chunk sizes from 1 to `maxChunk`, seeded.
    case random(seed: UInt64, maxChunk: Int)
    /// Fixed-size chunks.
    case fixed(Int)

    var description: String {
        switch self {
        case .whole: "whole"
        case .bytewise: "bytewise"
        case .random(let seed, let maxChunk): "random(seed: \(seed), max: \(maxChunk))"
        case .fixed(let size): "fixed(\(size))"
        }
    }

    /// The chunk sizes for a stream of `total` bytes.
    func sizes(total: Int) -> [Int] {
        var sizes: [Int] = []
        var rng = SeededRandom(seed: { if case .random(let seed, _) = self { seed } else { 0 } }())
        var left = total
        while left > 0 {
            let size: Int
            switch self {
            case .whole: size = left
            case .bytewise: size = 1
            case .random(_, let maxChunk): size = Int.random(in: 1...max(1, maxChunk), using: &rng)
            case .fixed(let chunk): size = chunk
            }
            sizes.append(min(size, left))
            left -= min(size, left)
        }
        return sizes
    }
}

/// What a gate ended with after a whole stream, for comparing chunkings.
struct GateOutcome: Hashable {
    var violation: TCPStoreViolation?
    var released: UInt64
    var commands: UInt64
    var isValidated: Bool
    var isMidCommand: Bool
}

/// The largest number of bytes the gate held back (fed but not released) at any point.
struct FeedRun {
    var gate: TCPStoreGate
    var outcome: GateOutcome
    var maxHeld: UInt64
    /// `released` after each chunk.
    var releasedAfterChunk: [UInt64]
}

/// Feeds `bytes` to a fresh gate in the given chunking, checking invariants after every chunk:
/// `released` never shrinks and never passes the bytes fed, and a violation is reported once and kept.
func run(_ bytes: [UInt8], limits: TCPStoreLimits, chunking: Chunking) -> FeedRun {
    var gate = TCPStoreGate(limits: limits)
    var fed = 0
    var maxHeld: UInt64 = 0
    var releasedAfterChunk: [UInt64] = []
    var firstViolation: TCPStoreViolation?
    bytes.withUnsafeBytes { all in
        for size in chunking.sizes(total: bytes.count) {
            let before = gate.released
            let result = gate.feed(UnsafeRawBufferPointer(rebasing: all[fed..<fed + size]))
            fed += size
            #expect(gate.released >= before, "released shrank")
            #expect(gate.released <= UInt64(fed), "released passed the bytes fed")
            if let first = firstViolation {
                #expect(result == first && gate.released == before, "violation not sticky")
            }
            firstViolation = firstViolation ?? result
            maxHeld = max(maxHeld, UInt64(fed) - gate.released)
            releasedAfterChunk.append(gate.released)
        }
    }
    let outcome = GateOutcome(
        violation: firstViolation, released: gate.released, commands: gate.commands,
        isValidated: gate.isValidated, isMidCommand: gate.isMidCommand
    )
    return FeedRun(gate: gate, outcome: outcome, maxHeld: maxHeld, releasedAfterChunk: releasedAfterChunk)
}

/// The chunkings most tests compare: all at once, byte by byte, and a few random splits.
let standardChunkings: [Chunking] = [
    .whole, .bytewise, .random(seed: 1, maxChunk: 3), .random(seed: 2, maxChunk: 17), .random(seed: 3, maxChunk: 200),
]

/// Limits roomy enough for every sample request.
let roomyLimits = TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 4 << 20, maxKeys: 64)

/// Complete requests by command, as a gate fed `bytes` one byte at a time sees them: the byte fed
/// at a request boundary is the request's code, and the request is complete when `commands` grows.
/// The gate counts only the total; tests count by command this way. Stops at a violation.
func completedRequests(in bytes: [UInt8], limits: TCPStoreLimits) -> [TCPStoreCommand: UInt64] {
    var gate = TCPStoreGate(limits: limits)
    var counts: [TCPStoreCommand: UInt64] = [:]
    var current: TCPStoreCommand?
    bytes.withUnsafeBytes { all in
        for index in all.indices {
            if !gate.isMidCommand { current = TCPStoreCommand(rawValue: all[index]) }
            let before = gate.commands
            guard gate.feed(UnsafeRawBufferPointer(rebasing: all[index..<index + 1])) == nil else { return }
            if gate.commands > before, let current { counts[current, default: 0] += 1 }
        }
    }
    return counts
}
