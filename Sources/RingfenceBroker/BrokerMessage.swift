import RingfenceIO
import RingfenceZMTP

/// One message from upstream, read once and shared by every subscriber queue it goes to: each
/// frame's encoded header and body, in the order a subscriber's connection writes them (one
/// gathered write, no copy per subscriber). Immutable.
struct BrokerMessage {
    /// Header, body, header, body, …
    let chunks: [SharedBytes]
    /// The first frame's body: what subscriptions match against (a byte prefix).
    let topicFrame: SharedBytes
    /// Bytes on the wire, headers included.
    let wireBytes: Int

    /// The header of every short data frame (size 0-255, MORE or not), made once and shared by
    /// every message: small messages then cost one allocation fewer per frame.
    static let shortHeaders: [SharedBytes] = (0..<512).map { index in
        SharedBytes(FrameHeader.encode(size: index / 2, more: index % 2 == 1, command: false))
    }

    /// - Precondition: `frames` is not empty.
    init(frames: [SharedBytes]) {
        precondition(!frames.isEmpty, "a ZMTP message has at least one frame")
        var chunks: [SharedBytes] = []
        chunks.reserveCapacity(frames.count * 2)
        var total = 0
        for (index, frame) in frames.enumerated() {
            let more = index < frames.count - 1
            let header =
                frame.count < 256
                ? Self.shortHeaders[frame.count * 2 + (more ? 1 : 0)]
                : SharedBytes(FrameHeader.encode(size: frame.count, more: more, command: false))
            chunks.append(header)
            chunks.append(frame)
            total += header.count + frame.count
        }
        self.chunks = chunks
        topicFrame = frames[0]
        wireBytes = total
    }
}
