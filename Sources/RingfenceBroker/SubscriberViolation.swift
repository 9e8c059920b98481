import RingfenceZMTP

/// Why a subscriber was closed; the rule names are what the log says (`rule=`).
enum SubscriberViolation: Error, CustomStringConvertible {
    case handshake(ZMTPError)
    case frame(ZMTPError)
    case messageTooLarge(size: Int, cap: Int)
    case dataMessage(frames: Int, bytes: Int)
    case unexpectedCommand(String)
    case peerError(String)
    case topicTooLong(bytes: Int, cap: Int)
    case tooManySubscriptions(cap: Int)

    var rule: String {
        switch self {
        case .handshake(let error):
            if case .socketTypeMismatch = error { return "socket-type" }
            return "handshake"
        case .frame(.frameTooLarge), .frame(.commandTooLarge): return "frame-size"
        case .frame: return "framing"
        case .messageTooLarge: return "frame-size"
        case .dataMessage: return "data-from-subscriber"
        case .unexpectedCommand: return "unexpected-command"
        case .peerError: return "peer-error"
        case .topicTooLong: return "topic-size"
        case .tooManySubscriptions: return "subscription-count"
        }
    }

    /// The reason for a ZMTP ERROR command, where one may be sent; nil: just close.
    var errorReason: String? {
        switch self {
        case .handshake(let error): error.errorReason
        case .frame(let error): error.errorReason
        case .messageTooLarge: "frame too large"
        case .dataMessage: "subscribers may only send subscriptions"
        case .unexpectedCommand: "unexpected command"
        case .peerError: nil
        case .topicTooLong: "topic too long"
        case .tooManySubscriptions: "too many subscriptions"
        }
    }

    var description: String {
        switch self {
        case .handshake(let error): "handshake: \(error)"
        case .frame(let error): "\(error)"
        case .messageTooLarge(let size, let cap): "frame or message of \(size) bytes is over the \(cap)-byte cap"
        case .dataMessage(let frames, let bytes): "a data message (\(frames) frames, \(bytes) bytes) that is not a subscription"
        case .unexpectedCommand(let name): "unexpected command \(name)"
        case .peerError(let reason): "the subscriber sent ERROR \(reason)"
        case .topicTooLong(let bytes, let cap): "topic of \(bytes) bytes is over max_topic_bytes (\(cap))"
        case .tooManySubscriptions(let cap): "more than max_subscriptions_per_peer (\(cap)) topics"
        }
    }
}
