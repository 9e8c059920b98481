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

@Suite struct GuardChangesTests {
    static func policy(_ guards: String) throws -> Policy {
        try Policy.parse(guards, file: "p.toml")
    }

    @Test func namesAddedRemovedAndChangedGuards() throws {
        let before = try Self.policy(
            """
            [[guard]]
            name = "kept"
            kind = "firewall"
            port = 1
            allow = []
            [[guard]]
            name = "edited"
            kind = "firewall"
            port = 2
            allow = []
            [[guard]]
            name = "gone"
            kind = "firewall"
            port = 3
            allow = []
            """)
        let after = try Self.policy(
            """
            [[guard]]
            name = "kept"
            kind = "firewall"
            port = 1
            allow = []
            [[guard]]
            name = "edited"
            kind = "firewall"
            port = 2
            allow = ["10.0.0.1"]
            [[guard]]
            name = "new"
            kind = "firewall"
            port = 4
            allow = []
            """)
        let changes = GuardChanges(from: before, to: after)
        #expect(changes.added == ["new"])
        #expect(changes.removed == ["gone"])
        #expect(changes.changed == ["edited"])
        #expect(GuardChanges(from: nil, to: after).added == ["edited", "kept", "new"])
    }
}
