import RingfencePolicy
import Testing

@testable import RingfenceDaemon

@Suite struct LogfmtHandlerTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("", "\"\""),
        ("two words", "\"two words\""),
        ("a=b", "\"a=b\""),
        ("say \"hi\"", "\"say \\\"hi\\\"\""),
        ("line\nbreak", "\"line\\nbreak\""),
        ("back\\slash", "\"back\\\\slash\""),
        ("bell\u{07}", "\"bell\\u{7}\""),
    ])
    func quotesOnlyWhatNeedsIt(value: String, expected: String) {
        #expect(LogfmtHandler.quote(value) == expected)
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        let stamp = LogfmtHandler.timestamp()
        #expect(stamp.count == 24)
        #expect(stamp.hasSuffix("Z"))
        #expect(stamp.dropFirst(10).first == "T")
    }
}
