/// A subscription change from a subscriber, in either of its wire forms (docs/zmtp.md §4).
///
/// - ZMTP 3.0: a single-frame data message `01 topic` (subscribe) or `00 topic` (cancel).
/// - ZMTP 3.1: a `SUBSCRIBE` or `CANCEL` command carrying the topic.
///
/// A publisher must accept both forms under either negotiated version: libzmq XSUB forwards its
/// application's `\x01topic` as a data message even to a 3.1 peer (docs/zmtp.md §4).
public enum Subscription: Hashable, Sendable {
    /// Subscribe to messages whose first frame starts with the topic (empty: everything).
    case subscribe([UInt8])
    /// Remove a subscription to the topic.
    case cancel([UInt8])

    /// The topic subscribed to or cancelled.
    public var topic: [UInt8] {
        switch self {
        case .subscribe(let topic), .cancel(let topic): topic
        }
    }

    /// Reads the ZMTP 3.0 form: the body of a single-frame data message whose first byte is 1 (subscribe)
    /// or 0 (cancel), followed by the topic.
    ///
    /// The caller checks that the message has one frame. An XPUB's application gets other upstream
    /// messages as ordinary messages; a PUB drops them (docs/zmtp.md §4).
    /// - Returns: The subscription, or nil for an empty body or any other first byte.
    public static func fromMessage(_ body: UnsafeRawBufferPointer) -> Subscription? {
        guard let first = body.first else { return nil }
        let topic = Array(UnsafeRawBufferPointer(rebasing: body[1...]))
        switch first {
        case 1: return .subscribe(topic)
        case 0: return .cancel(topic)
        default: return nil
        }
    }

    /// Reads the ZMTP 3.1 form.
    /// - Returns: The subscription for a `SUBSCRIBE` or `CANCEL` command, nil for any other command.
    public static func fromCommand(_ command: Command) -> Subscription? {
        switch command {
        case .subscribe(let topic): .subscribe(topic)
        case .cancel(let topic): .cancel(topic)
        default: nil
        }
    }

    /// The change as a command (the ZMTP 3.1 form).
    var command: Command {
        switch self {
        case .subscribe(let topic): .subscribe(topic: topic)
        case .cancel(let topic): .cancel(topic: topic)
        }
    }

    /// The frame to send to a publisher whose greeting advertised minor version `peerMinor`.
    ///
    /// A `SUBSCRIBE`/`CANCEL` command when `peerMinor` ≥ 1, otherwise the 3.0 data message
    /// (`00 <size> 01 topic`), as libzmq SUB itself downgrades for a 3.0 peer. The frame is always well
    /// formed: sizes over 255 use the long form, unlike libzmq 4.3.4's encoder for topics of 246–255
    /// bytes (docs/zmtp.md §4), which is why topics should be capped at 245 bytes anyway.
    /// - Parameter peerMinor: The peer's advertised minor version (pass our own when it is lower).
    /// - Returns: Header and body, ready to write.
    public func encodedFrame(peerMinor: UInt8) -> [UInt8] {
        if peerMinor >= 1 { return command.encodedFrame() }
        let topic = topic
        var bytes: [UInt8] = []
        bytes.reserveCapacity(topic.count + 10)
        FrameHeader.encode(size: topic.count + 1, more: false, command: false, into: &bytes)
        if case .subscribe = self { bytes.append(1) } else { bytes.append(0) }
        bytes.append(contentsOf: topic)
        return bytes
    }
}
