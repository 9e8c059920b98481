import Foundation
import RingfenceIO
import Testing

/// The broker's ZMTP decoders against libzmq 4.3.4 (issue 16 item 2; docs/reliability.md,
/// "Differential test"): generated streams, valid and invalid, fed to both as the broker meets
/// them; both must come to the same decision (refused, handshaking, open, or accepted up to a
/// final sentinel), with the same subscriptions or messages, unless the difference is one of
/// `divergences`, each a deliberate policy of ours.
///
/// `RINGFENCE_DIFF_CASES` (streams per side, default 700) and `RINGFENCE_DIFF_SEED` run it longer or
/// elsewhere; `RINGFENCE_DIFF_REPORT=1` prints how often each decision pair occurred.
@Suite(.timeLimit(.minutes(3)))
struct DifferentialTests {
    static let environment = ProcessInfo.processInfo.environment
    static let casesPerSide = environment["RINGFENCE_DIFF_CASES"].flatMap { Int($0) } ?? 700
    static let seed = environment["RINGFENCE_DIFF_SEED"].flatMap { UInt64($0) } ?? 0x16_0002
    static let batchSize = 32

    /// What libzmq may decide on a stream we decided `ours` on.
    static func allowed(_ ours: OurVerdict, stream: GeneratedStream) -> Set<StreamDecision> {
        var allowed: Set<StreamDecision> = [ours.decision]
        for divergence in divergences(of: ours, stream: stream) { allowed.formUnion(divergence.libzmq) }
        return allowed
    }

    /// The table's entries for what we decided.
    static func divergences(of ours: OurVerdict, stream: GeneratedStream) -> [Divergence] {
        let side = stream.side
        guard let category = ours.refusal ?? ours.note else { return [] }
        return divergences.filter { divergence in
            divergence.refusal == category && (divergence.side ?? side) == side
                && divergence.detail.map { ours.detail.contains($0) } != false
                && divergence.condition.map { $0(stream) } != false
        }
    }

    @Test(arguments: BrokerSide.allCases)
    func sameDecisionAsLibzmq(side: BrokerSide) throws {
        let loop = EventLoop(index: 0, label: "differential")
        var generator = ZMTPStreamGenerator(seed: Self.seed &+ (side == .subscriber ? 0 : 1), side: side)
        let peer = try LibzmqPeer()
        var tally: [String: Int] = [:]
        var index = 0
        while index < Self.casesPerSide {
            let streams = (index..<min(index + Self.batchSize, Self.casesPerSide)).map { generator.next(index: $0) }
            index += streams.count
            let ours = streams.map { stream in
                // The same verdict whether the bytes come in one read or in small ones.
                let piece = 1 + stream.index % 61
                let (whole, pieces) =
                    side == .subscriber
                    ? (BrokerDecoders.subscriber(stream, loop: loop), BrokerDecoders.subscriber(stream, loop: loop, piece: piece))
                    : (BrokerDecoders.engine(stream), BrokerDecoders.engine(stream, piece: piece))
                // A refused stream may be refused for another of its faults: the session handles a
                // read's subscriptions only once the read is decoded, so a fault later in the same read
                // comes first. What was decoded before a refusal is dropped with the connection.
                let comment = Comment(rawValue: "stream \(side) #\(stream.index) in reads of \(piece): \(stream.recipe)")
                #expect(whole.decision == pieces.decision, comment)
                if whole.decision != .refused { #expect(whole == pieces, comment) }
                return whole
            }
            let theirs = try peer.run(zip(streams, ours).map { ($0, Self.allowed($1, stream: $0)) })
            for (stream, (our, their)) in zip(streams, zip(ours, theirs)) {
                let why =
                    our.decision == their.decision
                    ? "same" : Self.divergences(of: our, stream: stream).first?.why.prefix(40) ?? "?"
                let category = our.refusal ?? our.note ?? our.decision.rawValue
                tally["\(category) -> libzmq \(their.decision) (\(why))", default: 0] += 1
                check(stream, our, their)
            }
        }
        if Self.environment["RINGFENCE_DIFF_REPORT"] == "1" {
            print("differential \(side): \(Self.casesPerSide) streams")
            for (pair, count) in tally.sorted(by: { $0.key < $1.key }) { print("  \(count)\t\(pair)") }
        }
    }

    private func check(_ stream: GeneratedStream, _ ours: OurVerdict, _ theirs: LibzmqVerdict) {
        if Self.environment["RINGFENCE_DIFF_REPORT"] == "1", ours.decision != theirs.decision {
            let fields = [
                "DIFF", "\(stream.side)", ours.refusal ?? ours.note ?? ours.decision.rawValue, ours.detail,
                "\(theirs.decision)", theirs.evidence, stream.recipe.joined(separator: " | "),
            ]
            print(fields.joined(separator: "\t"))
        }
        let context = """
            stream \(stream.side) #\(stream.index): \(stream.recipe.joined(separator: " | "))
              ours: \(ours.decision) \(ours.refusal ?? "") \(ours.detail)
              libzmq: \(theirs.decision) \(theirs.evidence)
              bytes: \(stream.bytes.prefix(96).map { String($0, radix: 16) }.joined(separator: " "))
            """
        #expect(Self.allowed(ours, stream: stream).contains(theirs.decision), Comment(rawValue: context))
        guard ours.decision == .accepted, theirs.decision == .accepted else { return }
        switch stream.side {
        case .subscriber: #expect(ours.subscriptions == theirs.subscriptions, Comment(rawValue: context))
        case .engine:
            // libzmq 4.3.4's SUB hands a SUBSCRIBE or CANCEL command from its publisher to the
            // application as a message (the command's body); our XSUB ignores it.
            let commands = [[9] + Array("SUBSCRIBE".utf8), [6] + Array("CANCEL".utf8)]
            let messages = theirs.messages.filter { frames in
                !(frames.count == 1 && commands.contains { frames[0].starts(with: $0) })
            }
            #expect(ours.messages == messages, Comment(rawValue: context))
        }
    }
}
