import FuzzSupport
import RingfenceZMTP

/// The ZMTP decoders on either side of the broker (docs/zmtp.md): the handshake (greeting,
/// READY) as an XPUB facing a subscriber or an XSUB facing the engine (the input's second byte
/// picks), then the data phase's frame headers, commands and subscriptions, the bytes arriving
/// in pieces. Whatever the bytes, a decoder returns or throws a `ZMTPError`; it never traps,
/// never reads out of bounds and never allocates what a length claims.
func fuzzZMTP(_ input: UnsafeRawBufferPointer) {
    guard input.count >= 2 else { return }
    let localType: SocketType = input[1] & 1 == 0 ? .xpub : .xsub
    var handshake = Handshake(localType: localType, minor: 1, maxCommandBytes: 512)
    var data: [UInt8] = []
    for piece in Pieces(UnsafeRawBufferPointer(rebasing: input[2...])) {
        if handshake.state == .done {
            data += piece
            continue
        }
        do throws(ZMTPError) {
            let used = try handshake.feed(piece)
            if handshake.state == .done { data += piece[used...] }
        } catch {
            return
        }
    }
    data.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let header: FrameHeader?
            do throws(ZMTPError) {
                header = try FrameHeader.parse(rest, maxSize: 1 << 20)
            } catch {
                return
            }
            guard let header, rest.count - header.encodedCount >= Int(header.size) else { return }
            let body = UnsafeRawBufferPointer(rebasing: rest[header.encodedCount..<header.encodedCount + Int(header.size)])
            if header.isCommand {
                if let command = try? Command.parse(body) { _ = Subscription.fromCommand(command) }
            } else {
                _ = Subscription.fromMessage(body)
            }
            offset += header.encodedCount + Int(header.size)
        }
    }
}

let fuzzTestOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    fuzzZMTP(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main struct Main {
    static func main() { fuzzMain(fuzzTestOneInput, replaying: fuzzZMTP) }
}
