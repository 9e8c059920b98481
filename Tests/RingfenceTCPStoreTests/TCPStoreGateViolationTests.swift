import Testing

@testable import RingfenceTCPStore

/// Declared lengths far over any cap, up to the largest a `u64` can hold.
private let hugeLengths: [UInt64] = [1 << 40, 1 << 63, (1 << 63) + 1, UInt64.max - 1, UInt64.max, (4 << 20) + 1]

/// Each rule: the violation, its sentence, and how much was released before it (never the offending field).
@Suite struct TCPStoreGateViolationTests {
    private let limits = TCPStoreLimits(maxKeyBytes: 4096, maxValueBytes: 4 << 20, maxKeys: 8)

    /// Runs `bytes` in every standard chunking and checks they all end in the same violation and release.
    private func expectViolation(
        _ bytes: [UInt8], rule: TCPStoreViolation.Rule, released: UInt64, description: String? = nil,
        limits: TCPStoreLimits? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for chunking in standardChunkings {
            let result = run(bytes, limits: limits ?? self.limits, chunking: chunking)
            #expect(result.outcome.violation?.rule == rule, "\(chunking)", sourceLocation: sourceLocation)
            #expect(result.outcome.released == released, "\(chunking)", sourceLocation: sourceLocation)
            #expect(!result.outcome.isMidCommand, "\(chunking)", sourceLocation: sourceLocation)
            if let description {
                #expect(result.outcome.violation?.description == description, "\(chunking)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func firstCommandMustBeValidate() {
        var encoder = TCPStoreEncoder()
        encoder.set("/k", [1, 2, 3])
        encoder.validate()
        expectViolation(encoder.bytes, rule: .notValidateFirst, released: 0, description: "first command is SET (1), not VALIDATE")
    }

    @Test(arguments: TCPStoreCommand.allCases.filter { $0 != .validate })
    func noOtherFirstCommandReleasesAnything(_ command: TCPStoreCommand) {
        var encoder = TCPStoreEncoder()
        encoder.sample(command)
        expectViolation(
            encoder.bytes, rule: .notValidateFirst, released: 0,
            description: "first command is \(command.name) (\(command.rawValue)), not VALIDATE"
        )
    }

    @Test func httpRequestIsRejectedAtTheFirstByte() {
        expectViolation(
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), rule: .notValidateFirst, released: 0,
            description: "first command is 0x47 (not a TCPStore command), not VALIDATE"
        )
    }

    @Test func wrongMagic() {
        var encoder = TCPStoreEncoder()
        encoder.validate(magic: 0xDEAD_BEEF)
        encoder.ping(1)
        expectViolation(encoder.bytes, rule: .wrongMagic, released: 0, description: "VALIDATE magic 0xdeadbeef is not 0x3c85f7ce")
    }

    @Test func magicInTheOtherByteOrderIsWrong() {
        expectViolation([0x00, 0x3C, 0x85, 0xF7, 0xCE], rule: .wrongMagic, released: 0, description: "VALIDATE magic 0xcef7853c is not 0x3c85f7ce")
        expectViolation([0x00, 0x01, 0x00, 0x00, 0x00], rule: .wrongMagic, released: 0, description: "VALIDATE magic 0x00000001 is not 0x3c85f7ce")
    }

    @Test func laterValidateWithWrongMagicReleasesOnlyItsCode() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.get("/a")
        let offset = encoder.bytes.count
        encoder.validate(magic: 0)
        expectViolation(encoder.bytes, rule: .wrongMagic, released: UInt64(offset + 1))
    }

    @Test(arguments: [UInt8(0x63), 19, 20, 0x7F, 255])
    func unknownCommand(_ code: UInt8) {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.getNumKeys()
        encoder.code(code)
        encoder.u64(0)
        let hex = String(code, radix: 16)
        expectViolation(
            encoder.bytes, rule: .unknownCommand, released: 6,
            description: "command code 0x\(hex.count == 1 ? "0" + hex : hex) is not a TCPStore command"
        )
    }

    @Test func keyOverTheCap() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.set(String(repeating: "k", count: 9000), [1])
        expectViolation(encoder.bytes, rule: .keyTooLong, released: 6, description: "key of 9000 bytes is over the cap of 4096")
    }

    @Test func keyOneOverTheCapInALaterField() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.multiGet(["a", String(repeating: "k", count: 4097)])
        let field = encoder.lengthFields.last!
        expectViolation(encoder.bytes, rule: .keyTooLong, released: UInt64(field.offset), description: "key of 4097 bytes is over the cap of 4096")
    }

    @Test(arguments: hugeLengths)
    func hugeValueLengthStopsBeforeTheLengthField(_ length: UInt64) {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.code(.set)
        encoder.key("/k")
        let offset = encoder.bytes.count
        encoder.u64(length)
        expectViolation(encoder.bytes, rule: .valueTooLong, released: UInt64(offset), description: "value of \(length) bytes is over the cap of 4194304")
        #expect(offset == 16)
    }

    @Test(arguments: hugeLengths)
    func hugeKeyLength(_ length: UInt64) {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.code(.get)
        encoder.u64(length)
        expectViolation(encoder.bytes, rule: .keyTooLong, released: 6, description: "key of \(length) bytes is over the cap of 4096")
    }

    @Test func compareSetDesiredValueOverTheCap() {
        let small = TCPStoreLimits(maxKeyBytes: 16, maxValueBytes: 4, maxKeys: 2)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.compareSet("/k", expected: [1, 2, 3, 4], desired: [1, 2, 3, 4, 5])
        let field = encoder.lengthFields.last!
        expectViolation(encoder.bytes, rule: .valueTooLong, released: UInt64(field.offset), limits: small)
    }

    @Test(arguments: [TCPStoreCommand.check, .wait, .multiGet, .multiSet])
    func countOverTheCap(_ command: TCPStoreCommand) {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        let keys = (0..<9).map { "/k\($0)" }
        switch command {
        case .check: encoder.check(keys)
        case .wait: encoder.wait(keys)
        case .multiGet: encoder.multiGet(keys)
        default: encoder.multiSet(keys.map { ($0, [1]) })
        }
        expectViolation(encoder.bytes, rule: .tooManyKeys, released: 6, description: "\(command.name) with 9 keys is over the cap of 8")
    }

    @Test func hugeCount() {
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.code(.multiSet)
        encoder.u64(.max)
        expectViolation(encoder.bytes, rule: .tooManyKeys, released: 6)
    }

    @Test func violationIsSticky() {
        var gate = TCPStoreGate(limits: limits)
        var encoder = TCPStoreEncoder()
        encoder.validate()
        encoder.code(99)
        let violation = gate.feed(encoder.bytes)
        #expect(violation?.rule == .unknownCommand)
        #expect(gate.violation == violation)
        var valid = TCPStoreEncoder()
        valid.getNumKeys()
        valid.set("/k", [1])
        for _ in 0..<3 {
            #expect(gate.feed(valid.bytes) == violation)
            #expect(gate.feed([]) == violation)
        }
        #expect(gate.released == 5 && gate.commands == 1 && !gate.isMidCommand)
    }

    @Test func violationPrintsItsSentence() {
        let violation = TCPStoreViolation.keyTooLong(9000, cap: 4096)
        #expect("\(violation)" == "key of 9000 bytes is over the cap of 4096")
        #expect(violation.rule.rawValue == "key-size")
        #expect(TCPStoreViolation.Rule.notValidateFirst.rawValue == "validate-first")
        #expect(TCPStoreViolation.Rule.tooManyKeys.rawValue == "key-count")
    }
}
