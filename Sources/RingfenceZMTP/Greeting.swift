/// The fixed 64-byte ZMTP 3.x greeting that opens every connection (docs/zmtp.md §1).
///
/// | offset | bytes | field |
/// |---|---|---|
/// | 0 | 1 | signature `0xFF` |
/// | 1–8 | 8 | padding, not significant (libzmq sends `00 … 01`) |
/// | 9 | 1 | signature end `0x7F` (low bit 1: versioned) |
/// | 10, 11 | 2 | version major, minor |
/// | 12–31 | 20 | mechanism, NUL padded |
/// | 32 | 1 | as-server |
/// | 33–63 | 31 | filler |
///
/// Only the NULL mechanism is supported: the broker authenticates peers by address, not by ZMTP security.
struct Greeting: Hashable, Sendable {
    /// The greeting's length on the wire.
    static let size = 64

    /// The minor version: 0 (ZMTP 3.0) or 1 (3.1); libzmq 4.3.4 always advertises 1 (docs/zmtp.md §1).
    var minor: UInt8
    /// The major version: always 3 in what we send; a peer may advertise more (RFC 23: accept any ≥ 3.0).
    var major: UInt8
    /// The security mechanism without its NUL padding: always `"NULL"` once parsed.
    var mechanism: String
    /// The as-server flag: always false once parsed (NULL forbids it).
    var asServer: Bool

    /// Creates a greeting value; defaults are ours (3.1, NULL, client).
    init(major: UInt8 = 3, minor: UInt8 = 1, mechanism: String = "NULL", asServer: Bool = false) {
        self.major = major
        self.minor = minor
        self.mechanism = mechanism
        self.asServer = asServer
    }

    /// Byte offsets of the fields checked.
    private static let signatureEndOffset = 9, majorOffset = 10, minorOffset = 11
    private static let mechanismOffset = 12, mechanismLength = 20, asServerOffset = 32

    /// Our greeting: signature `FF`, 8 zero padding bytes, `7F`, version 3.`minor`, `"NULL"` padded with NULs,
    /// as-server 0, zero filler.
    ///
    /// Send all 64 bytes at once when the connection opens: libzmq sends its greeting in three steps and
    /// waits for ours, so a peer that waits for a whole greeting first would deadlock (docs/zmtp.md §1).
    /// - Parameter minor: 1 for ZMTP 3.1; 0 to make a libzmq peer downgrade to 3.0 framing of subscriptions.
    /// - Returns: The 64 greeting bytes.
    static func encoded(minor: UInt8 = 1) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        bytes[0] = 0xFF
        bytes[signatureEndOffset] = 0x7F
        bytes[majorOffset] = 3
        bytes[minorOffset] = minor
        for (index, byte) in "NULL".utf8.enumerated() { bytes[mechanismOffset + index] = byte }
        return bytes
    }

    /// Checks the first bytes of a peer's greeting as they arrive, so a session can drop a non-ZMTP peer
    /// (e.g. `GET / HTTP/1.1`) as soon as that is known, from its first byte.
    ///
    /// Checks byte 0 is `0xFF`, byte 9's low bit is 1 (not ZMTP 1.0) and byte 10 (major) is at least 3,
    /// for whichever of those bytes are present. The padding is never interpreted (RFC 23).
    /// - Parameter bytes: The greeting's first 1 to 64 bytes (more are ignored).
    /// - Throws: `ZMTPError.notZMTP`, `.unversionedPeer` or `.unsupportedVersion`.
    static func checkPrefix(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) {
        guard let first = bytes.first else { return }
        guard first == 0xFF else { throw .notZMTP(firstByte: first) }
        if bytes.count > signatureEndOffset {
            let signatureEnd = bytes[signatureEndOffset]
            guard signatureEnd & 1 == 1 else { throw .unversionedPeer(signatureEnd: signatureEnd) }
        }
        if bytes.count > majorOffset {
            let major = bytes[majorOffset]
            guard major >= 3 else { throw .unsupportedVersion(major: major) }
        }
    }

    /// Parses a peer's complete greeting.
    ///
    /// Checks the signature and major version (see `checkPrefix`), that the mechanism is exactly `NULL`
    /// followed by 16 NULs (RFC 23: it must match exactly), and that as-server is 0 (NULL forbids a
    /// server role). The padding and filler are not checked: RFC 23 gives them no meaning.
    /// - Parameter bytes: Exactly `Greeting.size` bytes.
    /// - Returns: The greeting, with the peer's version.
    /// - Throws: A greeting `ZMTPError`.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(ZMTPError) -> Greeting {
        precondition(bytes.count == size, "a greeting is \(size) bytes, got \(bytes.count)")
        try checkPrefix(bytes)
        let mechanism = UnsafeRawBufferPointer(rebasing: bytes[mechanismOffset..<mechanismOffset + mechanismLength])
        guard mechanism.elementsEqual(nullMechanism) else {
            // Trailing NULs are padding; any other byte is reported (escaped in the description).
            let end = (mechanism.lastIndex { $0 != 0 } ?? -1) + 1
            throw .unsupportedMechanism(String(decoding: mechanism[..<end], as: UTF8.self))
        }
        let asServer = bytes[asServerOffset]
        guard asServer == 0 else { throw .asServerWithNull(asServer) }
        return Greeting(major: bytes[majorOffset], minor: bytes[minorOffset], mechanism: "NULL", asServer: false)
    }

    /// `NULL` with its 16 NUL bytes of padding, as the mechanism field must read.
    private static let nullMechanism: [UInt8] = Array("NULL".utf8) + [UInt8](repeating: 0, count: 16)
}
