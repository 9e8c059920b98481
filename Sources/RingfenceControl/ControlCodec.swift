import FoundationEssentials

/// JSON for the control socket: snake_case keys, one object per message, a newline at the end.
/// FoundationEssentials' coders (no ICU, no full Foundation) do the JSON; nothing here is
/// hand-written but the error wording.
public enum ControlCodec {
    /// The largest request the daemon reads; more is refused with `too-large`.
    public static let maxRequestBytes = 64 << 10

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        do {
            return Array(try encoder.encode(value)) + [0x0A]
        } catch {
            // Our own value types always encode; this would be a bug, reported as a reply.
            return Array(#"{"version":1,"ok":false,"error":{"code":"internal","message":"reply could not be encoded","details":[]}}"#.utf8) + [0x0A]
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws(ControlError) -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw ControlError(code: .badRequest, message: "not a valid request: \(describe(error))")
        } catch {
            throw ControlError(code: .badRequest, message: "not a valid request: \(error)")
        }
    }

    /// Decodes a request and checks its version.
    public static func request(from bytes: some Collection<UInt8>) throws(ControlError) -> ControlRequest {
        let versioned = try decode(Versioned.self, from: bytes)
        guard let version = versioned.version else {
            throw ControlError(code: .badRequest, message: "not a valid request: \"version\" is missing")
        }
        guard version == ControlRequest.currentVersion else {
            throw ControlError(
                code: .unsupportedVersion,
                message: "request version \(version) is not supported; this proxyd speaks version \(ControlRequest.currentVersion)")
        }
        return try decode(ControlRequest.self, from: bytes)
    }

    private struct Versioned: Decodable { var version: Int? }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
        }
        switch error {
        case .dataCorrupted(let context): return "malformed JSON\(path(context))"
        case .keyNotFound(let key, let context): return "\"\(key.stringValue)\" is missing\(path(context))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription)\(path(context))"
        @unknown default: return "\(error)"
        }
    }
}
