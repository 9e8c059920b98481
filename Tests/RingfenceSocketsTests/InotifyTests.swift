import SystemPackage
import Testing

@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

@Suite struct InotifyTests {
    /// A fresh directory under /tmp, removed by the caller.
    static func scratchDirectory() -> String {
        var template = Array("/tmp/rf-inotify-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil)
        return String(cString: made!)
    }

    @Test func aRenameOverASymbolicLinkInAWatchedDirectoryIsReported() throws {
        let directory = Self.scratchDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let inotify = try Inotify()
        defer { inotify.close() }
        _ = try inotify.watch(directory)
        #expect(inotify.drain() == 0)

        // kubelet's swap: `..data_tmp` made, then renamed over `..data`.
        #expect(symlink("a", directory + "/..data") == 0)
        #expect(symlink("b", directory + "/..data_tmp") == 0)
        #expect(rename(directory + "/..data_tmp", directory + "/..data") == 0)
        // Three creates (the first link, the second), a move out and a move in: events, not blocking.
        #expect(inotify.drain() >= 3)
        #expect(inotify.drain() == 0)
    }

    @Test func watchingWhatIsNotADirectoryFails() throws {
        let inotify = try Inotify()
        defer { inotify.close() }
        #expect(throws: Errno.self) { _ = try inotify.watch("/nonexistent/ringfence") }
        #expect(throws: Errno.self) { _ = try inotify.watch("/etc/hostname") }
    }

    @Test func eventsAreCountedWithTheirNames() {
        // Two records: one without a name, one with a 16-byte (padded) name.
        var bytes = [UInt8](repeating: 0, count: 16)
        var named = [UInt8](repeating: 0, count: 16 + 16)
        named[12] = 16
        bytes += named
        #expect(Inotify.eventCount(bytes[...]) == 2)
        #expect(Inotify.eventCount(bytes[0..<10]) == 0)
    }

    @Test func resolvedPathFollowsLinks() {
        let directory = Self.scratchDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        #expect(mkdir(directory + "/..v1", 0o755) == 0)
        let file = creat(directory + "/..v1/policy.toml", 0o644)
        #expect(file >= 0)
        close(file)
        #expect(symlink("..v1", directory + "/..data") == 0)
        #expect(symlink("..data/policy.toml", directory + "/policy.toml") == 0)
        #expect(Posix.resolvedPath(directory + "/policy.toml") == directory + "/..v1/policy.toml")
        #expect(Posix.resolvedPath(directory + "/missing") == nil)
    }
}
