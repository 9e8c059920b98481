@testable import RingfenceZMTP

/// Bytes from hexadecimal text such as `"ff 00 7f"` (spaces ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    precondition(digits.count.isMultiple(of: 2), "odd number of hex digits in \(text)")
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}

/// The UTF-8 bytes of `text`.
func ascii(_ text: String) -> [UInt8] { Array(text.utf8) }

/// `count` zero bytes.
func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

/// A 64-byte greeting with each field settable, defaulting to libzmq 4.3.4's own (docs/zmtp.md §1).
func greetingBytes(
    first: UInt8 = 0xFF, padding: [UInt8] = hex("00 00 00 00 00 00 00 01"), signatureEnd: UInt8 = 0x7F,
    major: UInt8 = 3, minor: UInt8 = 1, mechanism: [UInt8] = ascii("NULL"), asServer: UInt8 = 0
) -> [UInt8] {
    [first] + padding + [signatureEnd, major, minor] + mechanism + zeros(20 - mechanism.count) + [asServer] + zeros(31)
}

// Array conveniences over the buffer-based API, keeping the typed error so `#expect(throws:)` can compare it.

extension Greeting {
    static func parse(_ bytes: [UInt8]) throws(ZMTPError) -> Greeting {
        try onBytes(bytes) { bytes throws(ZMTPError) in try parse(bytes) }
    }

    static func checkPrefix(_ bytes: [UInt8]) throws(ZMTPError) {
        try onBytes(bytes) { bytes throws(ZMTPError) in try checkPrefix(bytes) }
    }
}

extension FrameHeader {
    static func parse(_ bytes: [UInt8], maxSize: UInt64 = 64 << 20) throws(ZMTPError) -> FrameHeader? {
        try onBytes(bytes) { bytes throws(ZMTPError) in try parse(bytes, maxSize: maxSize) }
    }
}

extension Command {
    static func parse(_ body: [UInt8]) throws(ZMTPError) -> Command {
        try onBytes(body) { body throws(ZMTPError) in try parse(body) }
    }

    /// Parses a whole command frame (header and body) as received.
    static func parseFrame(_ frame: [UInt8]) throws(ZMTPError) -> Command {
        guard let header = try FrameHeader.parse(frame), header.isCommand,
              frame.count == header.encodedCount + Int(header.size)
        else { throw .malformedCommand(command: "", problem: "test: not one whole command frame") }
        return try parse(Array(frame[header.encodedCount...]))
    }
}

extension Subscription {
    static func fromMessage(_ body: [UInt8]) -> Subscription? {
        body.withUnsafeBytes { fromMessage($0) }
    }
}

/// Runs `body` on the bytes of `array`, keeping its typed error.
func onBytes<Result>(
    _ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(ZMTPError) -> Result
) throws(ZMTPError) -> Result {
    try array.withUnsafeBytes { bytes in Swift.Result { () throws(ZMTPError) in try body(bytes) } }.get()
}
