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

    /// - Precondition: `frames` is not empty.
    init(frames: [SharedBytes]) {
        precondition(!frames.isEmpty, "a ZMTP message has at least one frame")
        var chunks: [SharedBytes] = []
        chunks.reserveCapacity(frames.count * 2)
        var total = 0
        for (index, frame) in frames.enumerated() {
            let header = SharedBytes(FrameHeader.encode(size: frame.count, more: index < frames.count - 1, command: false))
            chunks.append(header)
            chunks.append(frame)
            total += header.count + frame.count
        }
        self.chunks = chunks
        topicFrame = frames[0]
        wireBytes = total
    }
}
