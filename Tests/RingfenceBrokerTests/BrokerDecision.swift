import RingfenceIO
import RingfenceSockets
import RingfenceZMTP

@testable import RingfenceBroker

#if canImport(Glibc)
    import Glibc
#endif

/// What a side made of a whole stream: the decision the differential test compares.
enum StreamDecision: String, Hashable, Sendable, CustomStringConvertible {
    /// The connection was (or would be) closed.
    case refused
    /// The handshake had not finished: waiting for more.
    case handshaking
    /// The handshake finished, nothing refused, the sentinel not delivered (a stream without one).
    case open
    /// The sentinel was delivered: everything before it was read and accepted.
    case accepted

    var description: String { rawValue }
}

/// Our side's verdict on one stream.
struct OurVerdict: Sendable, Equatable {
    var decision: StreamDecision
    /// Why we refused, as a category of the divergence table (`ZMTPError` case or broker rule).
    var refusal: String?
    /// Not a refusal, but a state the divergence table names: `skippingOversized`, the engine's
    /// reader reading past a message over `max_message_bytes`.
    var note: String?
    /// The refusal in words.
    var detail: String = ""
    /// Subscriber side: the topics held at the end. Engine side: the messages delivered.
    var subscriptions: Set<[UInt8]> = []
    var messages: [[[UInt8]]] = []
}

/// Feeds a generated stream to our decoders exactly as the broker does.
enum BrokerDecoders {
    /// The limits of a guard with the policy's defaults (docs/broker.md).
    static let limits = BrokerLimits(
        hwmMessages: 1000, hwmBytes: 64 << 20, maxTopicBytes: 245, maxSubscriptions: 64, maxMessageBytes: 64 << 20,
        handshakeTimeout: .seconds(5), onOverflow: .block, busyPoll: .zero)

    /// The stream's bytes in reads of `piece` bytes (0: one read), as a connection hands them on.
    static func reads(_ bytes: [UInt8], piece: Int) -> [ArraySlice<UInt8>] {
        guard piece > 0 else { return [bytes[...]] }
        return stride(from: 0, to: bytes.count, by: piece).map { bytes[$0..<min($0 + piece, bytes.count)] }
    }

    /// Subscriber side: a real `SubscriberSession` on one end of a socket pair receives the bytes
    /// (on its loop, as the broker's read handler calls it), in reads of `piece` bytes.
    static func subscriber(_ stream: GeneratedStream, loop: EventLoop, piece: Int = 0) -> OurVerdict {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        defer { close(fds[1]) }
        let session = SubscriberSession(
            id: UInt64(stream.index), socket: Socket(adopting: fds[0]),
            peer: SocketAddress(address: .v4(0x7F00_0001), port: 1),
            loop: loop, limits: limits)
        return loop.queue.sync {
            defer { session.close() }
            var inputs: [SubscriberSession.Input] = []
            var verdict = OurVerdict(decision: .handshaking)
            for read in reads(stream.bytes, piece: piece) {
                let result = read.withUnsafeBytes { bytes in
                    Result { () throws(SubscriberViolation) in try session.receive(bytes, into: &inputs) }
                }
                if case .failure(let error) = result {
                    verdict.decision = .refused
                    verdict.refusal = category(error)
                    verdict.detail = "\(error)"
                    break
                }
            }
            verdict.subscriptions = session.topics
            if verdict.decision != .refused, session.isActive {
                verdict.decision =
                    stream.hasSentinel
                        && inputs.contains { if case .subscribe(GeneratedStream.sentinel) = $0 { true } else { false } }
                    ? .accepted : .open
            }
            return verdict
        }
    }

    /// Engine side: the handshake as an XSUB, then the message reader with the upstream's caps, in
    /// the order `UpstreamLink.received` runs them on each read of `piece` bytes (its PINGs
    /// answered, other commands ignored).
    static func engine(_ stream: GeneratedStream, piece: Int = 0) -> OurVerdict {
        var handshake = Handshake(localType: .xsub, minor: 1, maxCommandBytes: 4096)
        var reader = MessageReader(
            maxFrameBytes: UInt64(limits.maxMessageBytes), maxMessageBytes: limits.maxMessageBytes, skipsOversized: true
        )
        var verdict = OurVerdict(decision: .handshaking)
        reading: for read in reads(stream.bytes, piece: piece) {
            var events: [MessageReader.Event] = []
            defer {
                for case .message(let frames) in events {
                    verdict.messages.append(frames.map { frame in frame.withUnsafeBytes { Array($0) } })
                }
            }
            let failure: String? = read.withUnsafeBytes { bytes in
                var rest = bytes
                if handshake.state != .done {
                    do throws(ZMTPError) {
                        rest = UnsafeRawBufferPointer(rebasing: bytes[try handshake.feed(bytes)...])
                    } catch {
                        verdict.refusal = "handshake." + category(error)
                        return "\(error)"
                    }
                    guard handshake.state == .done else { return nil }
                }
                do throws(MessageReader.Failure) {
                    try reader.consume(rest, into: &events)
                } catch {
                    if case .zmtp(let zmtp) = error {
                        verdict.refusal = "frame." + category(zmtp)
                    } else {
                        verdict.refusal = "messageTooLarge"
                    }
                    return "\(error)"
                }
                return nil
            }
            if let failure {
                verdict.decision = .refused
                verdict.detail = failure
                break reading
            }
        }
        guard verdict.decision != .refused, handshake.state == .done else { return verdict }
        verdict.decision = .open
        if reader.isSkippingOversized { verdict.note = "skippingOversized" }
        if stream.hasSentinel, verdict.messages.last == [GeneratedStream.sentinel] { verdict.decision = .accepted }
        return verdict
    }

    /// The divergence table's category of a subscriber violation.
    static func category(_ violation: SubscriberViolation) -> String {
        switch violation {
        case .handshake(let error): "handshake." + category(error)
        case .frame(let error): "frame." + category(error)
        case .messageTooLarge: "messageTooLarge"
        case .dataMessage: "dataMessage"
        case .unexpectedCommand: "unexpectedCommand"
        case .peerError: "peerError"
        case .topicTooLong: "topicTooLong"
        case .tooManySubscriptions: "tooManySubscriptions"
        }
    }

    /// The case name of a `ZMTPError`.
    static func category(_ error: ZMTPError) -> String {
        switch error {
        case .notZMTP: "notZMTP"
        case .unversionedPeer: "unversionedPeer"
        case .unsupportedVersion: "unsupportedVersion"
        case .unsupportedMechanism: "unsupportedMechanism"
        case .asServerWithNull: "asServerWithNull"
        case .reservedFlagBits: "reservedFlagBits"
        case .moreOnCommand: "moreOnCommand"
        case .sizeOutOfRange: "sizeOutOfRange"
        case .frameTooLarge: "frameTooLarge"
        case .commandTooLarge: "commandTooLarge"
        case .malformedCommand: "malformedCommand"
        case .dataBeforeReady: "dataBeforeReady"
        case .expectedReady: "expectedReady"
        case .peerError: "peerError"
        case .missingSocketType: "missingSocketType"
        case .socketTypeMismatch: "socketTypeMismatch"
        }
    }
}
