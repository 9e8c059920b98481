import RingfenceAddresses
import Testing

@testable import RingfenceNames

/// The DNS response decoder: the A and AAAA records of the answer and the smallest TTL, names
/// skipped whether written out or compressed, and truncated or malformed messages refused.
@Suite struct DNSAnswerTests {
    /// A response to a question for `reader.test`, with `answers` (type, TTL, data), each
    /// record's name a compression pointer to the question's.
    static func response(_ answers: [(type: UInt16, ttl: UInt32, data: [UInt8])], longNames: Bool = false) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
        func u32(_ v: UInt32) -> [UInt8] { u16(UInt16(v >> 16)) + u16(UInt16(v & 0xffff)) }
        let name: [UInt8] = [6] + Array("reader".utf8) + [4] + Array("test".utf8) + [0]
        var bytes = u16(0x1234) + u16(0x8180) + u16(1) + u16(UInt16(answers.count)) + u16(0) + u16(0)
        bytes += name + u16(1) + u16(1)
        for answer in answers {
            bytes += (longNames ? name : [0xC0, 12]) + u16(answer.type) + u16(1) + u32(answer.ttl)
            bytes += u16(UInt16(answer.data.count)) + answer.data
        }
        return bytes
    }

    @Test func readsAddressesAndTheSmallestTTL() throws {
        let v6: [UInt8] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let cname: [UInt8] = [1, 0x78, 0xC0, 12]
        let answer = try DNSAnswer(decoding: Self.response([(5, 30, cname), (1, 7, [10, 0, 0, 2]), (28, 20, v6)]))
        #expect(answer.addresses == [IPAddress("10.0.0.2")!, IPAddress("fd00::1")!])
        #expect(answer.minimumTTL == 7)
        let written = try DNSAnswer(decoding: Self.response([(1, 300, [10, 0, 0, 3])], longNames: true))
        #expect(written.addresses == [IPAddress("10.0.0.3")!] && written.minimumTTL == 300)
    }

    @Test func anEmptyAnswerHasNoTTL() throws {
        let answer = try DNSAnswer(decoding: Self.response([]))
        #expect(answer.addresses.isEmpty && answer.minimumTTL == nil)
    }

    @Test func truncatedAndMalformedMessagesAreRefused() {
        let whole = Self.response([(1, 7, [10, 0, 0, 2])])
        for cut in [0, 5, 12, 20, whole.count - 1] {
            #expect(throws: DNSAnswer.DecodeError.truncated) { try DNSAnswer(decoding: Array(whole.prefix(cut))) }
        }
        var badLabel = whole
        badLabel[12] = 0x50  // a label length of 80
        #expect(throws: DNSAnswer.DecodeError.badLabel) { try DNSAnswer(decoding: badLabel) }
        var lying = whole
        lying[7] = 200  // 200 answers announced, one present
        #expect(throws: DNSAnswer.DecodeError.truncated) { try DNSAnswer(decoding: lying) }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<96, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? DNSAnswer(decoding: bytes)
        }
    }
}
