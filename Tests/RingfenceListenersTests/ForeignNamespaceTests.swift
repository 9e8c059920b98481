import Dispatch
import Testing

@testable import RingfenceListeners
@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// The tracepoint fires for every namespace on the host: a listener in another network namespace
/// must never be reported (docs/listeners.md §3). Needs root (unshare(2) wants CAP_SYS_ADMIN).
/// Part of the serialized watch suite, so that its watches do not slow the latency tests.
extension ListenerWatchTests {
    @Test(arguments: [WatchMethod.tracepoint, .polling])
    func aListenerInAnotherNamespaceIsNotReported(method: WatchMethod) throws {
        try #require(geteuid() == 0, "unshare(2) needs CAP_SYS_ADMIN: run as root")
        let log = EventLog()
        let watch = ListenerWatch(prefer: method, queue: queue, handler: log.handler)
        _ = try watch.start()
        defer { watch.stop() }

        let foreign = try Self.listenInPrivateNetwork()
        // Our own listener after it: once it is reported, the foreign one has been seen and judged.
        let own = try TestSocket("127.0.0.1")
        defer { own.close() }
        try own.listen()
        #expect(log.wait(for: .seconds(2), EventLog.appeared(own)) != nil)
        let leaked = log.wait(for: .milliseconds(100)) {
            if case .appeared(let listener, _) = $0 { listener.inode == foreign } else { false }
        }
        #expect(leaked == nil, "a listener of another namespace was reported: \(String(describing: leaked))")
    }

    final class Job: @unchecked Sendable {
        var outcome: Result<UInt64, any Error> = .failure(Failure(description: "did not run"))
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    /// Opens a listener on 0.0.0.0 (no interface needs to be up) from a thread moved into a fresh
    /// network namespace, and returns its inode; the namespace and the listener go when the
    /// thread's descriptor is closed, after a moment for the watch to see the record.
    static func listenInPrivateNetwork() throws -> UInt64 {
        let job = Job()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            let job = Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue()
            job.outcome = Result { () throws -> UInt64 in
                typealias Unshare = @convention(c) (Int32) -> Int32
                guard let unshare = dlsym(nil, "unshare") else { throw Failure(description: "no unshare(2)") }
                _ = try Posix.must { unsafeBitCast(unshare, to: Unshare.self)(0x4000_0000) }  // CLONE_NEWNET
                let socket = try TestSocket("0.0.0.0")
                try socket.listen()
                usleep(20_000)
                socket.close()
                return socket.inode
            }
            return nil
        }, Unmanaged.passUnretained(job).toOpaque())
        guard started == 0 else { throw Failure(description: "pthread_create: \(started)") }
        pthread_join(thread, nil)
        return try job.outcome.get()
    }
}
