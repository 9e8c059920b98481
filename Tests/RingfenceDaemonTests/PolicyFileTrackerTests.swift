import Testing

@testable import RingfenceDaemon

@Suite struct PolicyFileTrackerTests {
    /// What `tracker`, starting from `initial`, says to each of `looks` in turn.
    static func verdicts(from initial: String?, _ looks: [String?]) -> [PolicyFileTracker.Verdict] {
        var tracker = PolicyFileTracker(contents: initial.map { Array($0.utf8) })
        return looks.map { tracker.observe($0.map { Array($0.utf8) }) }
    }

    @Test func onlyNewContentIsAChange() {
        // A touch (or a ConfigMap swap to the same content), new content, the same again, and
        // the first back: a bad file is a change too (the reload refuses it), and so is the
        // good one put back.
        #expect(Self.verdicts(from: "a", ["a", "b", "b", "a"]) == [.unchanged, .changed, .unchanged, .changed])
    }

    @Test func aMissingFileIsReportedOnceAndItsReturnWithTheSameContentIsNoChange() {
        #expect(
            Self.verdicts(from: "a", [nil, nil, "a", nil, "c"]) == [.vanished, .unchanged, .unchanged, .vanished, .changed])
    }

    @Test func aFileMissingAtTheStartIsAChangeWhenItComes() {
        #expect(Self.verdicts(from: nil, [nil, "a"]) == [.unchanged, .changed])
    }

    @Test(arguments: [
        // A plain file: its directory.
        ("/etc/ringfence/policy.toml", "/etc/ringfence/policy.toml", ["/etc/ringfence"]),
        // A ConfigMap volume: the volume (where `..data` is swapped) and the timestamped directory.
        (
            "/etc/ringfence/policy.toml", "/etc/ringfence/..2026_12_04_15_00_00.123/policy.toml",
            ["/etc/ringfence", "/etc/ringfence/..2026_12_04_15_00_00.123"]
        ),
        // A link elsewhere: both directories.
        ("/etc/ringfence/policy.toml", "/srv/policies/current.toml", ["/etc/ringfence", "/srv/policies"]),
        ("policy.toml", "/work/policy.toml", [".", "/work"]),
        ("/policy.toml", "/policy.toml", ["/"]),
    ])
    func watchesTheFilesDirectoryAndItsTargets(path: String, resolved: String, expected: [String]) {
        #expect(PolicyFileTracker.directories(path: path, resolved: resolved) == expected)
    }

    @Test func aFileThatDoesNotResolveIsWatchedThroughItsOwnDirectory() {
        #expect(PolicyFileTracker.directories(path: "/etc/ringfence/policy.toml", resolved: nil) == ["/etc/ringfence"])
    }
}
