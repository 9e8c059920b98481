/// The differential test's table of deliberate differences from libzmq 4.3.4: every class, and
/// why (docs/reliability.md, "Differential test", has the same table for readers).
extension DifferentialTests {
    /// A documented difference: where we refuse a stream for `refusal` (a `ZMTPError` case or a
    /// broker rule, as `BrokerDecoders.category` names them, or a `note`) and its description
    /// contains `detail`, libzmq may decide any of `libzmq` instead.
    struct Divergence: Sendable {
        var side: BrokerSide?
        var refusal: String
        var detail: String?
        /// Where set, the entry applies only to streams for which it holds.
        var condition: (@Sendable (GeneratedStream) -> Bool)?
        var libzmq: Set<StreamDecision>
        var why: String
    }

    /// The first frame after the greeting is a data frame whose body reads as a READY command.
    static func readyInADataFrame(_ stream: GeneratedStream) -> Bool {
        let bytes = stream.bytes
        guard bytes.count > 66, bytes[64] & 0x04 == 0 else { return false }
        let body = bytes[64] & 0x02 == 0 ? 66 : 73
        return bytes.count > body && bytes[body...].starts(with: [5] + Array("READY".utf8))
    }

    /// The stream holds a property named `Socket-Type` in libzmq's exact casing.
    static func hasExactSocketTypeName(_ stream: GeneratedStream) -> Bool {
        let name: [UInt8] = [11] + Array("Socket-Type".utf8)
        return stream.bytes.indices.contains { stream.bytes[$0...].starts(with: name) }
    }

    /// libzmq reads on as if nothing happened: what it decides depends on the rest of the stream.
    static let carriesOn: Set<StreamDecision> = [.handshaking, .open, .accepted]

    /// Every class of difference, and why (the same table is in docs/reliability.md).
    static let divergences: [Divergence] = [
        Divergence(
            refusal: "handshake.notZMTP", libzmq: [.handshaking, .open],
            why:
                "libzmq takes a greeting not starting with FF for unversioned ZMTP 1.0 and waits for its " +
                "identity frame; we refuse downgrades (docs/zmtp.md §8.4)"),
        Divergence(
            refusal: "handshake.unversionedPeer", libzmq: [.handshaking, .open],
            why: "the same for byte 9 with its low bit clear (ZMTP 1.0)"),
        Divergence(
            refusal: "handshake.unsupportedVersion", libzmq: carriesOn,
            why: "libzmq speaks ZMTP 1.0 to major 0, 2.0 to major 1, and 3.x to major 2; we refuse below 3 (§8.4)"),
        Divergence(
            refusal: "handshake.asServerWithNull", libzmq: carriesOn,
            why: "libzmq does not look at as-server under NULL; RFC 23 requires it to be 0"),
        Divergence(
            refusal: "handshake.commandTooLarge", libzmq: carriesOn,
            why:
                "our cap on a handshake command (512 bytes from subscribers, 4096 from the engine, §8.1); libzmq " +
                "has none"),
        Divergence(
            refusal: "handshake.missingSocketType", libzmq: carriesOn,
            why: "libzmq accepts a READY without Socket-Type; we require it (§3)"),
        Divergence(
            refusal: "handshake.malformedCommand", detail: "Socket-Type appears", libzmq: carriesOn,
            why: "libzmq checks each Socket-Type of a READY in turn; we refuse a second one"),
        Divergence(
            refusal: "handshake.socketTypeMismatch", condition: { !hasExactSocketTypeName($0) },
            libzmq: carriesOn,
            why:
                "libzmq checks only a property named exactly Socket-Type; RFC 23 names are case-insensitive and " +
                "we check any casing (§3)"),
        Divergence(
            refusal: "handshake.malformedCommand", detail: "does not fit in the 0 bytes left",
            libzmq: carriesOn,
            why:
                "libzmq's parse_metadata stops at a value length that overruns the READY and accepts it when no " +
                "byte is left after the length"),
        Divergence(
            refusal: "handshake.malformedCommand", detail: "has only 0 of its 4 value-length bytes",
            libzmq: carriesOn,
            why: "the same, for a READY that ends right after a property's name"),
        Divergence(
            refusal: "handshake.malformedCommand", detail: "over 2^31-1", libzmq: carriesOn,
            why: "the same, for a value length of 2^31 or more"),
        Divergence(
            refusal: "handshake.dataBeforeReady", condition: { readyInADataFrame($0) }, libzmq: carriesOn,
            why:
                "libzmq takes a READY body without the COMMAND flag for a READY; we refuse a data frame before " +
                "READY"),
        Divergence(
            refusal: "handshake.dataBeforeReady", libzmq: [.handshaking],
            why: "we refuse a data frame before READY from its flags byte; libzmq once the frame is whole"
        ),
        Divergence(
            refusal: "handshake.reservedFlagBits", libzmq: carriesOn,
            why: "libzmq ignores reserved flag bits; we refuse them (§2)"),
        Divergence(
            refusal: "frame.reservedFlagBits", libzmq: carriesOn,
            why: "the same, after the handshake"),
        Divergence(
            refusal: "frame.moreOnCommand", libzmq: carriesOn,
            why: "libzmq glues a command with MORE to the next frame; we refuse it (§2)"),
        Divergence(
            refusal: "handshake.moreOnCommand", libzmq: carriesOn,
            why: "libzmq takes a READY with MORE; we refuse it (§2)"),
        Divergence(
            refusal: "frame.malformedCommand", detail: "malformed \"READY\"", libzmq: carriesOn,
            why:
                "libzmq drops a READY after the handshake unread; we parse it (and a subscriber may not send one " +
                "anyway)"),
        Divergence(
            refusal: "frame.malformedCommand", detail: "TTL bytes", libzmq: carriesOn,
            why: "libzmq answers a PING without its 2 TTL bytes with stale memory; we refuse it (§5, §8.5)"),
        Divergence(
            refusal: "frame.malformedCommand", detail: "over the 16-byte maximum", libzmq: carriesOn,
            why: "libzmq cuts a PING context over 16 bytes to 16; we refuse it (§5)"),
        Divergence(
            refusal: "frame.malformedCommand", detail: "the command name is empty", libzmq: carriesOn,
            why: "libzmq drops a command it does not know, however malformed; we refuse a malformed one (§2)"
        ),
        Divergence(
            refusal: "frame.malformedCommand", detail: "does not fit in the", libzmq: carriesOn,
            why: "the same, for a name longer than the command"),
        Divergence(
            side: .subscriber, refusal: "frame.frameTooLarge", libzmq: carriesOn,
            why: "our 512-byte cap on what a subscriber sends (§8.1); libzmq allocates what the header declares"),
        Divergence(
            side: .subscriber, refusal: "dataMessage", libzmq: carriesOn,
            why:
                "an XPUB hands a data message that is not a subscription to its application; readers never send " +
                "one (§8.6)"),
        Divergence(
            side: .subscriber, refusal: "unexpectedCommand", libzmq: carriesOn,
            why:
                "libzmq drops commands it does not handle after the handshake; readers have no reason to send " +
                "any (§2, §8.6)"),
        Divergence(
            side: .subscriber, refusal: "topicTooLong", libzmq: carriesOn,
            why: "max_topic_bytes (245, §4, §8.3); libzmq has no cap"),
        Divergence(
            side: .subscriber, refusal: "tooManySubscriptions", libzmq: carriesOn,
            why: "max_subscriptions_per_peer (§8.3); libzmq has no cap"),
        Divergence(
            side: .engine, refusal: "skippingOversized", libzmq: [.refused],
            why:
                "we read past a message over max_message_bytes (counted, subscribers lose it); libzmq allocates " +
                "the declared size at once and closes when that fails (2^63-1)"),
    ]
}
