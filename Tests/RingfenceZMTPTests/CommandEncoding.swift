@testable import RingfenceZMTP

/// What tests read of encoded frames and commands that the broker itself never needs.
extension Command {
    /// The body bytes alone: name length, name, data.
    func encodedBody() -> [UInt8] {
        var bytes: [UInt8] = []
        appendBody(to: &bytes)
        return bytes
    }

    /// The value of READY's `Socket-Type` property, its name matched case-insensitively; nil if
    /// absent or if this is not a READY. With several, the first.
    var socketType: SocketType? {
        guard case .ready(let properties) = self,
              let property = properties.first(where: { $0.hasName(Self.socketTypeProperty) })
        else { return nil }
        return SocketType(rawValue: String(decoding: property.value, as: UTF8.self))
    }
}

extension FrameHeader {
    /// A header whose `encodedCount` is that of the shortest encoding (what `encode` sends).
    init(more: Bool, isCommand: Bool, size: UInt64) {
        self.init(more: more, isCommand: isCommand, size: size, encodedCount: size <= 255 ? 2 : 9)
    }

    /// This header's encoding, in its shortest form.
    func encoded() -> [UInt8] {
        Self.encode(size: Int(size), more: more, command: isCommand)
    }
}
