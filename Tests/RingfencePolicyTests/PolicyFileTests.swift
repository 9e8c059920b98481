import Foundation
import Testing

@testable import RingfencePolicy

/// What `Policy.load(path:)` refuses before parsing: paths that are not regular files, files over
/// the size limit, symlink loops; each with the file and the problem in the message.
@Suite struct PolicyFileTests {
    static func scratch() -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("policyfile-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func loadError(_ path: String) -> String? {
        do {
            _ = try Policy.load(path: path)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func directoryIsRefusedAsNotARegularFile() {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(Self.loadError(dir) == "\(dir): file: cannot read: a directory, not a regular file")
    }

    @Test func fifoWithoutAWriterIsRefusedAtOnceInsteadOfBlocking() {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/policy.toml"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(Self.loadError(fifo) == "\(fifo): file: cannot read: a FIFO, not a regular file")
    }

    @Test func symlinkLoopIsReportedWithTheSystemsReason() throws {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/a", withDestinationPath: dir + "/b")
        try FileManager.default.createSymbolicLink(atPath: dir + "/b", withDestinationPath: dir + "/a")
        #expect(Self.loadError(dir + "/a") == "\(dir)/a: file: cannot read: Too many levels of symbolic links")
    }

    @Test func fileOverTheLimitIsRefusedWithTheLimitBeforeItIsRead() throws {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/policy.toml"
        #expect(FileManager.default.createFile(atPath: path, contents: Data("# \n".utf8)))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(PolicyFile.maxBytes + 1))  // sparse: no disk used
        try handle.close()
        #expect(Self.loadError(path) == "\(path): file: cannot read: \(PolicyFile.maxBytes + 1) bytes, over the limit of 67108864 bytes (64 MiB) for a policy file")
    }

    @Test func readStopsAtTheLimitGivenToIt() throws {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/policy.toml"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x23, count: 100)))
        #expect(PolicyFile.read(path, limit: 99) == .failure(.tooLarge(size: 100, limit: 99)))
        #expect(PolicyFile.read(path, limit: 100) == .success(String(repeating: "#", count: 100)))
    }
}
