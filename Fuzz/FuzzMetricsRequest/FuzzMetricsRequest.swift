import FuzzSupport
import RingfenceControlServer

/// The `/metrics` request-head parser (`MetricsRequestHead`): whatever the bytes, it answers or
/// asks for more, never traps, keeps at most `maxBytes` + 1 of them, and gives the same answer
/// however the bytes are cut into reads (the first byte seeds the pieces, the rest is the head). A difference traps,
/// which libFuzzer reports as a crash.
func fuzzMetricsRequest(_ input: UnsafeRawBufferPointer) {
    guard !input.isEmpty else { return }
    let head = UnsafeRawBufferPointer(rebasing: input[1...])
    var whole = MetricsRequestHead()
    let answer = whole.append(head)
    var pieces = MetricsRequestHead()
    var answerInPieces: MetricsRequestHead.Route?
    for piece in Pieces(input) {
        answerInPieces = pieces.append(piece)
    }
    precondition(answer == answerInPieces, "the same head, cut differently, got \(String(describing: answer)) and \(String(describing: answerInPieces))")
    precondition(answer != nil || head.count <= MetricsRequestHead.maxBytes, "no answer after \(head.count) bytes")
}

let fuzzTestOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    fuzzMetricsRequest(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzTestOneInput, replaying: fuzzMetricsRequest) }
}
