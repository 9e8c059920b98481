import RingfenceIO
import RingfenceZMTP
import Testing

@testable import RingfenceBroker

/// A message's wire form: one header per frame, MORE on all but the last, bodies shared.
@Suite struct BrokerMessageTests {
    @Test func framesAreEncodedOnceAndShared() {
        let body = SharedBytes([UInt8](repeating: 5, count: 300))
        let message = BrokerMessage(frames: [SharedBytes(Array("topic".utf8)), body])
        #expect(message.chunks.count == 4)
        #expect(message.chunks[0].array == [0x01, 5])
        #expect(message.chunks[2].array == [0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x2C])
        #expect(message.chunks[3] === body)
        #expect(message.wireBytes == 2 + 5 + 9 + 300)
        #expect(message.topicFrame.starts(with: Array("top".utf8)) && message.topicFrame.starts(with: []))
        #expect(!message.topicFrame.starts(with: Array("topics".utf8)))
    }
}
