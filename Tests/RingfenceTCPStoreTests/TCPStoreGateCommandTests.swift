import Testing

@testable import RingfenceTCPStore

/// Well-formed streams: every request passes in full, however the stream is split.
@Suite struct TCPStoreGateCommandTests {
    @Test func realClientConnectIsValidateThenPing() {
        let connect: [UInt8] = [0x00, 0xCE, 0xF7, 0x85, 0x3C, 0x0D, 0x39, 0x30, 0x00, 0x00]
        var gate = TCPStoreGate(limits: roomyLimits)
        #expect(!gate.isValidated && !gate.isMidCommand)
        // Nothing of VALIDATE is released until the magic is complete.
        #expect(gate.feed(Array(connect[0..<4])) == nil)
        #expect(gate.released == 0 && !gate.isValidated && gate.isMidCommand)
        #expect(gate.feed([connect[4]]) == nil)
        #expect(gate.released == 5 && gate.isValidated && !gate.isMidCommand)
        // The PING code byte is released at once, its nonce when complete.
        #expect(gate.feed(Array(connect[5..<8])) == nil)
        #expect(gate.released == 6 && gate.isMidCommand)
        #expect(gate.feed(Array(connect[8...])) == nil)
        #expect(gate.released == 10 && !gate.isMidCommand)
        #expect(gate.commands == 2)
        let counts = completedRequests(in: connect, limits: roomyLimits)
        #expect(counts[.validate] == 1 && counts[.ping] == 1)
        #expect(gate.violation == nil)
    }

    @Test(arguments: TCPStoreCommand.allCases)
    func everyCommandPassesInFull(_ command: TCPStoreCommand) {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.sample(command)
        encoder.sample(command)
        let counts = completedRequests(in: encoder.bytes, limits: roomyLimits)
        for chunking in standardChunkings {
            let result = run(encoder.bytes, limits: roomyLimits, chunking: chunking)
            #expect(result.outcome.violation == nil, "\(chunking)")
            #expect(result.outcome.released == UInt64(encoder.bytes.count), "\(chunking)")
            #expect(result.outcome.commands == 3, "\(chunking)")
            #expect(counts[command] == (command == .validate ? 3 : 2), "\(chunking)")
            #expect(!result.outcome.isMidCommand && result.outcome.isValidated, "\(chunking)")
        }
    }

    @Test func encoderProducesTheDocumentedBytes() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.set("/k", [0xAB])
        #expect(encoder.bytes == [
            0x00, 0xCE, 0xF7, 0x85, 0x3C,
            0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x2F, 0x6B, 0x01, 0, 0, 0, 0, 0, 0, 0, 0xAB,
        ])
    }

    /// A stream holding every command once (and the multi-key ones also with n = 0).
    private func everyCommandStream() -> TCPStoreEncoder {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.ping(4242)
        for command in TCPStoreCommand.allCases { encoder.sample(command) }
        encoder.check([])
        encoder.wait([])
        encoder.multiGet([])
        encoder.multiSet([])
        encoder.set("", [])
        encoder.compareSet("", expected: [], desired: [])
        return encoder
    }

    @Test func isMidCommandIsFalseExactlyAtBoundaries() {
        let encoder = everyCommandStream()
        let boundaries = Set(encoder.commandEnds)
        var gate = TCPStoreGate(limits: roomyLimits)
        for (offset, byte) in encoder.bytes.enumerated() {
            #expect(gate.feed([byte]) == nil)
            let fed = offset + 1
            #expect(gate.isMidCommand == !boundaries.contains(fed), "after \(fed) bytes")
            if boundaries.contains(fed) {
                #expect(gate.released == UInt64(fed), "after \(fed) bytes")
                #expect(gate.commands == UInt64(encoder.commandEnds.firstIndex(of: fed)! + 1))
            }
        }
    }

    @Test func everyChunkingEndsTheSame() {
        let encoder = everyCommandStream()
        let expected = GateOutcome(
            violation: nil, released: UInt64(encoder.bytes.count), commands: UInt64(encoder.commandStarts.count),
            isValidated: true, isMidCommand: false
        )
        let chunkings = standardChunkings + (10..<30).map { Chunking.random(seed: $0, maxChunk: 40) }
        for chunking in chunkings {
            let result = run(encoder.bytes, limits: roomyLimits, chunking: chunking)
            #expect(result.outcome == expected, "\(chunking)")
            // At most one partial fixed field (8 bytes) is ever held back.
            #expect(result.maxHeld <= 8, "\(chunking)")
        }
    }

    @Test func commandCodeIsReleasedAtOnceAndFieldsWhenComplete() {
        var gate = TCPStoreGate(limits: roomyLimits)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.add("/n", -5)
        let bytes = encoder.bytes
        #expect(gate.feed(Array(bytes[0..<6])) == nil)
        #expect(gate.released == 6)
        #expect(gate.feed(Array(bytes[6..<13])) == nil)  // 7 of the 8 key-length bytes
        #expect(gate.released == 6)
        #expect(gate.feed([bytes[13]]) == nil)
        #expect(gate.released == 14)
        #expect(gate.feed([bytes[14]]) == nil)  // the key streams
        #expect(gate.released == 15)
        #expect(gate.feed(Array(bytes[15..<23])) == nil)  // rest of key + 7 bytes of the i64
        #expect(gate.released == 16)
        #expect(gate.feed([bytes[23]]) == nil)
        #expect(gate.released == 24 && !gate.isMidCommand && completedRequests(in: bytes, limits: roomyLimits)[.add] == 1)
    }

    @Test func laterValidateIsJustACommand() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.get("/a")
        encoder.validate()
        encoder.get("/b")
        let result = run(encoder.bytes, limits: roomyLimits, chunking: .bytewise)
        #expect(result.outcome.violation == nil)
        #expect(result.outcome.released == UInt64(encoder.bytes.count))
        let counts = completedRequests(in: encoder.bytes, limits: roomyLimits)
        #expect(counts[.validate] == 2 && counts[.get] == 2)
    }

    @Test func keysAndValuesExactlyAtTheCapsPass() {
        let limits = TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 1000, maxKeys: 3)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.set(String(repeating: "k", count: 4096), [UInt8](repeating: 7, count: 1000))
        encoder.multiSet([("a", []), ("b", [1]), ("c", [UInt8](repeating: 2, count: 1000))])
        encoder.wait(["x", "y", "z"])
        for chunking in standardChunkings {
            let result = run(encoder.bytes, limits: limits, chunking: chunking)
            #expect(result.outcome.violation == nil, "\(chunking)")
            #expect(result.outcome.released == UInt64(encoder.bytes.count), "\(chunking)")
        }
    }

    @Test func zeroCapsStillAllowEmptyFields() {
        let limits = TCPStoreLimits(maxKeyBytes: 0, maxValueBytes: -1, maxKeys: 0)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.set("", [])
        encoder.multiGet([])
        encoder.getNumKeys()
        let result = run(encoder.bytes, limits: limits, chunking: .bytewise)
        #expect(result.outcome.violation == nil)
        #expect(result.outcome.released == UInt64(encoder.bytes.count))
        #expect(result.outcome.commands == 4)
    }

    @Test func emptyFeedChangesNothing() {
        var gate = TCPStoreGate(limits: roomyLimits)
        #expect(gate.feed([]) == nil)
        #expect(gate.released == 0 && gate.commands == 0 && !gate.isMidCommand)
    }

    @Test func commandNamesMatchTorch() {
        #expect(TCPStoreCommand.allCases.count == 19)
        #expect(TCPStoreCommand.compareSet.name == "COMPARE_SET")
        #expect(TCPStoreCommand.getNumKeys.name == "GETNUMKEYS")
        #expect(TCPStoreCommand(rawValue: 18) == .barrier)
        #expect(TCPStoreCommand(rawValue: 19) == nil)
    }
}
