/// A ZMTP command: the body of a frame with the COMMAND flag (RFC 23 and 37, docs/zmtp.md §2–§5).
///
/// A body is a 1-byte name length (1–255), the name, then command-specific data. Names are matched
/// exactly (as libzmq does); anything else parses as `.unknown`, which a peer may ignore after the
/// handshake (libzmq silently drops it, docs/zmtp.md §2).
public enum Command: Hashable, Sendable {
    /// `READY`: the NULL handshake's only command, carrying metadata properties.
    case ready(properties: [Property])
    /// `ERROR`: a fatal handshake error, with a reason of 0–255 bytes.
    case error(reason: String)
    /// `SUBSCRIBE` (ZMTP 3.1): subscribe to messages whose first frame starts with `topic`.
    case subscribe(topic: [UInt8])
    /// `CANCEL` (ZMTP 3.1): remove a subscription.
    case cancel(topic: [UInt8])
    /// `PING` (ZMTP 3.1 heartbeat): a TTL in tenths of a second (0: none), and a context of 0–16 bytes
    /// to echo in the PONG.
    case ping(ttl: UInt16, context: [UInt8])
    /// `PONG`: the answer to a PING, echoing its context.
    case pong(context: [UInt8])
    /// Any other command, by name; its data is not kept.
    case unknown(name: String)

    /// The largest PING/PONG context: 16 bytes (RFC 37).
    static let maxPingContextCount = 16

    /// Parses a command body, strictly.
    ///
    /// Checks that the name length is 1–255 and within the body; for READY, that every property's name
    /// length (1–255) and 4-byte big-endian value length (≤ 2^31−1) fit in what is left, with no
    /// trailing byte (as libzmq's `parse_metadata` does); for ERROR, that the reason fits exactly; for
    /// PING, that the 2-byte TTL is there (libzmq answers a shorter PING with 16 bytes of stale memory,
    /// docs/zmtp.md §5) and the context is at most 16 bytes; for PONG, that the context is at most 16 bytes.
    /// - Parameter body: The frame body, exactly.
    /// - Returns: The command.
    /// - Throws: `ZMTPError.malformedCommand`.
    public static func parse(_ body: UnsafeRawBufferPointer) throws(ZMTPError) -> Command {
        var reader = ByteReader(body)
        guard let nameCount = reader.readByte() else { throw malformed("", "the body is empty") }
        guard nameCount > 0 else { throw malformed("", "the command name is empty") }
        guard let nameBytes = reader.read(Int(nameCount)) else {
            throw malformed("", "a name of \(nameCount) bytes does not fit in the \(reader.remaining) bytes after its length")
        }
        switch Name(nameBytes) {
        case .ready:
            return .ready(properties: try parseProperties(&reader))
        case .error:
            guard let reasonCount = reader.readByte() else { throw malformed("ERROR", "the reason length is missing") }
            guard reader.remaining == Int(reasonCount) else {
                throw malformed("ERROR", "a reason of \(reasonCount) bytes, but \(reader.remaining) bytes follow")
            }
            return .error(reason: String(decoding: reader.readRest(), as: UTF8.self))
        case .subscribe:
            return .subscribe(topic: Array(reader.readRest()))
        case .cancel:
            return .cancel(topic: Array(reader.readRest()))
        case .ping:
            guard let ttl = reader.readBigEndian(UInt16.self) else {
                throw malformed("PING", "only \(reader.remaining) of the 2 TTL bytes")
            }
            return .ping(ttl: ttl, context: try context(&reader, of: "PING"))
        case .pong:
            return .pong(context: try context(&reader, of: "PONG"))
        case nil:
            return .unknown(name: String(decoding: nameBytes, as: UTF8.self))
        }
    }

    /// The command's name, e.g. `READY`.
    public var name: String {
        switch self {
        case .ready: "READY"
        case .error: "ERROR"
        case .subscribe: "SUBSCRIBE"
        case .cancel: "CANCEL"
        case .ping: "PING"
        case .pong: "PONG"
        case .unknown(let name): name
        }
    }

    /// The body's length in bytes, as `appendBody(to:)` writes it.
    var encodedBodyCount: Int {
        let data = switch self {
        case .ready(let properties): properties.reduce(0) { $0 + $1.encodedCount }
        case .error(let reason): 1 + min(reason.utf8.count, 255)
        case .subscribe(let topic), .cancel(let topic): topic.count
        case .ping(_, let context): 2 + context.count
        case .pong(let context): context.count
        case .unknown: 0
        }
        return 1 + name.utf8.count + data
    }

    /// Appends the body bytes (name length, name, data) to `bytes`.
    ///
    /// An ERROR reason is cut to its first 255 bytes. Preconditions: the name is 1–255 bytes, property
    /// names 1–255 bytes and values < 2^31 bytes, PING/PONG contexts ≤ 16 bytes.
    func appendBody(to bytes: inout [UInt8]) {
        let name = name.utf8
        precondition((1...255).contains(name.count), "a command name is 1 to 255 bytes")
        bytes.append(UInt8(name.count))
        bytes.append(contentsOf: name)
        switch self {
        case .ready(let properties):
            for property in properties { property.append(to: &bytes) }
        case .error(let reason):
            let reason = reason.utf8.prefix(255)
            bytes.append(UInt8(reason.count))
            bytes.append(contentsOf: reason)
        case .subscribe(let topic), .cancel(let topic):
            bytes.append(contentsOf: topic)
        case .ping(let ttl, let context):
            precondition(context.count <= Self.maxPingContextCount, "a PING context is at most 16 bytes")
            appendBigEndian(ttl, to: &bytes)
            bytes.append(contentsOf: context)
        case .pong(let context):
            precondition(context.count <= Self.maxPingContextCount, "a PONG context is at most 16 bytes")
            bytes.append(contentsOf: context)
        case .unknown:
            break
        }
    }

    /// Header and body, ready to write (short header for bodies ≤ 255 bytes, as RFC 23 asks).
    public func encodedFrame() -> [UInt8] {
        let count = encodedBodyCount
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 9)
        FrameHeader.encode(size: count, more: false, command: true, into: &bytes)
        appendBody(to: &bytes)
        return bytes
    }

    /// `READY` with exactly one property, `Socket-Type` in its exact casing, as libzmq sends for
    /// PUB, XPUB, SUB and XSUB (no `Identity`, docs/zmtp.md §3):
    /// `04 19 05 'READY' 0B 'Socket-Type' 00 00 00 03 'SUB'`.
    static func ready(socketType: SocketType) -> Command {
        .ready(properties: [Property(name: socketTypeProperty, value: Array(socketType.rawValue.utf8))])
    }

    /// The Socket-Type property's name in the casing libzmq requires (docs/zmtp.md §3).
    static let socketTypeProperty = "Socket-Type"

    // MARK: - Parsing steps

    /// The names of the commands parsed into their own cases.
    private enum Name {
        case ready, error, subscribe, cancel, ping, pong

        /// Matches `bytes` exactly against the known names, without allocating.
        init?(_ bytes: UnsafeRawBufferPointer) {
            switch bytes.count {
            case 4 where bytes.elementsEqual("PING".utf8): self = .ping
            case 4 where bytes.elementsEqual("PONG".utf8): self = .pong
            case 5 where bytes.elementsEqual("READY".utf8): self = .ready
            case 5 where bytes.elementsEqual("ERROR".utf8): self = .error
            case 6 where bytes.elementsEqual("CANCEL".utf8): self = .cancel
            case 9 where bytes.elementsEqual("SUBSCRIBE".utf8): self = .subscribe
            default: return nil
            }
        }
    }

    /// Reads READY's properties up to the end of the body.
    private static func parseProperties(_ reader: inout ByteReader) throws(ZMTPError) -> [Property] {
        var properties: [Property] = []
        while let nameCount = reader.readByte().map(Int.init) {
            let position = "property \(properties.count + 1)"
            guard nameCount > 0 else { throw malformed("READY", "\(position) has an empty name") }
            guard let nameBytes = reader.read(nameCount) else {
                throw malformed("READY", "\(position)'s name of \(nameCount) bytes does not fit in the \(reader.remaining) bytes left")
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard let valueCount = reader.readBigEndian(UInt32.self) else {
                throw malformed("READY", "property \(quoted(name)) has only \(reader.remaining) of its 4 value-length bytes")
            }
            guard valueCount <= UInt32(Property.maxValueCount) else {
                throw malformed("READY", "property \(quoted(name)) declares a value of \(valueCount) bytes, over 2^31-1")
            }
            guard let value = reader.read(Int(valueCount)) else {
                throw malformed("READY", "property \(quoted(name))'s value of \(valueCount) bytes does not fit in the \(reader.remaining) bytes left")
            }
            properties.append(Property(name: name, value: Array(value)))
        }
        return properties
    }

    /// Reads a PING or PONG context: the rest of the body, at most 16 bytes.
    private static func context(_ reader: inout ByteReader, of name: String) throws(ZMTPError) -> [UInt8] {
        guard reader.remaining <= maxPingContextCount else {
            throw malformed(name, "a context of \(reader.remaining) bytes is over the \(maxPingContextCount)-byte maximum")
        }
        return Array(reader.readRest())
    }

    /// A malformed-command error.
    private static func malformed(_ command: String, _ problem: String) -> ZMTPError {
        .malformedCommand(command: command, problem: problem)
    }
}
