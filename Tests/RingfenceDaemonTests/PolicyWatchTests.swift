import Dispatch
import Logging
import Testing

@testable import RingfenceDaemon

#if canImport(Glibc)
import Glibc
#endif

/// `PolicyWatch` on real inotify in a scratch directory, its reloads counted.
@Suite struct PolicyWatchTests {
    /// The reloads a watch asked for; touched only on `queue`.
    final class Reloads: @unchecked Sendable {
        let queue = DispatchQueue(label: "test.policy-watch")
        var count = 0
        var watch: PolicyWatch?

        func start(_ path: String) throws {
            let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
            try queue.sync {
                watch = try PolicyWatch(path: path, queue: queue, logger: quiet) { [unowned self] in count += 1 }
            }
        }

        /// The count after a quiet time longer than the debounce's.
        func settled() async throws -> Int {
            try await Task.sleep(for: .milliseconds(600))
            return queue.sync { count }
        }

        func stop() { queue.sync { watch?.stop() } }
    }

    static func scratchDirectory() -> String {
        var template = Array("/tmp/rf-watch-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil)
        return String(cString: made!)
    }

    static func write(_ text: String, to path: String) {
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
    }

    @Test func aConfigMapSwapIsOneReloadAndTheWatchFollowsTheNewDirectory() async throws {
        let volume = Self.scratchDirectory()
        defer { _ = system("rm -rf '\(volume)'") }
        mkdir(volume + "/..v1", 0o755)
        Self.write("one", to: volume + "/..v1/policy.toml")
        symlink("..v1", volume + "/..data")
        symlink("..data/policy.toml", volume + "/policy.toml")
        let reloads = Reloads()
        try reloads.start(volume + "/policy.toml")
        defer { reloads.stop() }

        for (generation, text) in [(2, "two"), (3, "three")] {
            mkdir(volume + "/..v\(generation)", 0o755)
            Self.write(text, to: volume + "/..v\(generation)/policy.toml")
            symlink("..v\(generation)", volume + "/..data_tmp")
            rename(volume + "/..data_tmp", volume + "/..data")
            _ = system("rm -rf '\(volume)/..v\(generation - 1)'")
            #expect(try await reloads.settled() == generation - 1)
        }
        // A swap to the same content: no reload.
        mkdir(volume + "/..v4", 0o755)
        Self.write("three", to: volume + "/..v4/policy.toml")
        symlink("..v4", volume + "/..data_tmp")
        rename(volume + "/..data_tmp", volume + "/..data")
        #expect(try await reloads.settled() == 2)
    }

    @Test func aRewriteInPlaceIsOneReloadATouchNoneAndAStoppedWatchNone() async throws {
        let directory = Self.scratchDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let path = directory + "/policy.toml"
        Self.write("one", to: path)
        let reloads = Reloads()
        try reloads.start(path)

        Self.write("two", to: path)
        #expect(try await reloads.settled() == 1)
        utimes(path, nil)
        #expect(try await reloads.settled() == 1)
        reloads.stop()
        Self.write("three", to: path)
        #expect(try await reloads.settled() == 1)
    }
}
