import FoundationEssentials
import Logging
import Testing

@testable import RingfenceDaemon

@Suite struct JSONLogLineTests {
    @Test func oneObjectWithFixedKeysFirstAndMetadataSorted() throws {
        let line = JSONLogLine.line(
            timestamp: "2026-11-23T05:06:07.123Z", level: .warning, message: "subscriber evicted",
            metadata: ["peer": "10.0.0.2", "guard": "bus"])
        #expect(
            line
                == #"{"ts":"2026-11-23T05:06:07.123Z","level":"warning","msg":"subscriber evicted","guard":"bus","peer":"10.0.0.2"}"#)
    }

    @Test func hostileStringsStayOneValidLine() throws {
        let hostile = "a \"quoted\" \\ back\nslash\u{01}\t😀"
        let line = JSONLogLine.line(
            timestamp: "t", level: .info, message: hostile, metadata: ["detail": .string(hostile)])
        #expect(!line.contains("\n"))
        let decoded = try JSONDecoder().decode([String: String].self, from: Data(line.utf8))
        #expect(decoded["msg"] == hostile)
        #expect(decoded["detail"] == hostile)
        #expect(decoded["level"] == "info")
    }
}
