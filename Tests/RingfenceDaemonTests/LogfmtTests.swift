import RingfencePolicy
import Testing

@testable import RingfenceDaemon

@Suite struct LogfmtTests {
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
        #expect(Logfmt.quote(value) == expected)
    }

    @Test func timestampsAreRFC3339UTCWithMilliseconds() {
        let stamp = Logfmt.timestamp()
        #expect(stamp.count == 24)
        #expect(stamp.hasSuffix("Z"))
        #expect(stamp.dropFirst(10).first == "T")
    }

    @Test func oneLineWithFixedKeysFirstAndMetadataSorted() {
        let line = Logfmt.line(
            timestamp: "2026-11-23T05:06:07.123Z", level: .warning, message: "subscriber evicted",
            metadata: ["peer": "10.0.0.2", "guard": "bus"])
        #expect(line == #"ts=2026-11-23T05:06:07.123Z level=warning msg="subscriber evicted" guard=bus peer=10.0.0.2"#)
    }
}
