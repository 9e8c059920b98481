import RingfenceTestSupport
import Testing

@testable import RingfenceTCPStore

/// Random streams: valid ones pass in full; one over-cap length stops the release exactly before it.
@Suite struct TCPStoreGatePropertyTests {
    private let limits = TCPStoreLimits(maxKeyBytes: 40, maxValueBytes: 300, maxKeys: 6)

    /// A random valid stream of VALIDATE and then 1–40 random requests.
    private func randomStream(seed: UInt64) -> TCPStoreEncoder {
        var rng = SeededRandom(seed: seed)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        for _ in 0..<Int.random(in: 1...40, using: &rng) { encoder.random(using: &rng, within: limits) }
        return encoder
    }

    @Test(arguments: 0..<100)
    func validStreamsAreReleasedInFull(seed: Int) {
        let encoder = randomStream(seed: UInt64(seed))
        let expected = GateOutcome(
            violation: nil, released: UInt64(encoder.bytes.count), commands: UInt64(encoder.commandStarts.count),
            isValidated: true, isMidCommand: false
        )
        for chunking in [Chunking.whole, .bytewise, .random(seed: UInt64(seed), maxChunk: 1 + seed % 50)] {
            let result = run(encoder.bytes, limits: limits, chunking: chunking)
            #expect(result.outcome == expected, "seed \(seed), \(chunking)")
            #expect(result.maxHeld <= 8, "seed \(seed), \(chunking)")
        }
    }

    @Test(arguments: 0..<100)
    func corruptedLengthStopsBeforeIt(seed: Int) throws {
        var encoder = randomStream(seed: UInt64(1_000 + seed))
        var rng = SeededRandom(seed: UInt64(seed))
        let field = try #require(encoder.lengthFields.randomElement(using: &rng))
        let cap: UInt64 = switch field.kind {
        case .key: UInt64(limits.maxKeyBytes)
        case .value: UInt64(limits.maxValueBytes)
        case .count: UInt64(limits.maxKeys)
        }
        let corrupt: UInt64 = switch Int.random(in: 0..<4, using: &rng) {
        case 0: cap + 1
        case 1: .max
        case 2: UInt64(1) << 63
        default: UInt64.random(in: cap + 1 ... .max, using: &rng)
        }
        encoder.overwrite(u64: corrupt, at: field.offset)
        let rule: TCPStoreViolation.Rule = switch field.kind {
        case .key: .keyTooLong
        case .value: .valueTooLong
        case .count: .tooManyKeys
        }
        for chunking in [Chunking.whole, .bytewise, .random(seed: UInt64(seed), maxChunk: 1 + seed % 50)] {
            let result = run(encoder.bytes, limits: limits, chunking: chunking)
            #expect(result.outcome.violation?.rule == rule, "seed \(seed), \(chunking)")
            #expect(result.outcome.released <= UInt64(field.offset), "seed \(seed), \(chunking)")
            // Everything before the field was well-formed, so all of it is released.
            #expect(result.outcome.released == UInt64(field.offset), "seed \(seed), \(chunking)")
            #expect(result.outcome.commands == UInt64(field.command), "seed \(seed), \(chunking)")
        }
    }

    @Test(arguments: 0..<50)
    func randomGarbageNeverReleasesMoreThanAValidPrefix(seed: Int) {
        // Arbitrary bytes after a valid handshake: whatever happens, released stays within the stream and
        // a prefix that is re-fed to a fresh gate reproduces the same released count.
        var rng = SeededRandom(seed: UInt64(seed))
        var encoder = TCPStoreEncoder()
        encoder.validate()
        let garbage = (0..<Int.random(in: 1...400, using: &rng)).map { _ in UInt8.random(in: 0...24, using: &rng) }
        let bytes = encoder.bytes + garbage
        let whole = run(bytes, limits: limits, chunking: .whole)
        let bytewise = run(bytes, limits: limits, chunking: .bytewise)
        #expect(whole.outcome == bytewise.outcome, "seed \(seed)")
        let prefix = Array(bytes[0..<Int(whole.outcome.released)])
        let replay = run(prefix, limits: limits, chunking: .whole)
        #expect(replay.outcome.violation == nil && replay.outcome.released == whole.outcome.released, "seed \(seed)")
    }
}
