import Dispatch
import Testing

@testable import RingfenceListeners
@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// Real watches over real listeners in the test process's namespace. Serialized: the latency
/// figures mean little with two watches competing for the machine's two cores.
@Suite(.serialized) struct ListenerWatchTests {
    let queue = DispatchQueue(label: "listener-watch-tests")

    /// Within a few polls of 10 ms: the bound proves the listener was noticed by the polling
    /// (the next listing, not a much later one), not how fast; the latency itself is measured by
    /// `make bench-discovery` (a bound of 50 ms here failed on a loaded CI machine).
    @Test func pollingNoticesAListenerWithinAFewPolls() throws {
        let log = EventLog()
        let watch = ListenerWatch(prefer: .polling, pollInterval: .milliseconds(10), queue: queue, handler: log.handler)
        #expect(try watch.start() == .polling)
        defer { watch.stop() }
        #expect(watch.fallbackReason == "polling was asked for")

        let socket = try TestSocket("127.0.0.1")
        defer { socket.close() }
        let before = ContinuousClock.now
        try socket.listen()
        let appeared = try #require(log.wait(for: .seconds(2), EventLog.appeared(socket)))
        #expect(appeared.1 - before < .milliseconds(500), "appeared after \(appeared.1 - before)")
        if case .appeared(let listener, let owner) = appeared.0 {
            #expect(listener.inode == socket.inode)
            #expect(owner?.pid == getpid())
        }
        socket.close()
        #expect(log.wait(for: .seconds(2), EventLog.disappeared(socket)) != nil)
    }

    @Test func tracepointNoticesListenersAndCleansUp() throws {
        let log = EventLog()
        let watch = ListenerWatch(prefer: .tracepoint, queue: queue, handler: log.handler)
        let method = try watch.start()
        let instance = watch.tracefsInstance
        defer {
            watch.stop()
            #expect(watch.tracefsInstance == nil)
            if let instance { #expect(!Posix.exists(instance), "the tracefs instance is removed on stop") }
        }
        guard method == .tracepoint else {
            let reason = watch.fallbackReason ?? "unknown"
            if getenv("RINGFENCE_REQUIRE_NETNS").map({ String(cString: $0) }) == "1" {
                Issue.record("the tracepoint cannot be used: \(reason)")
            } else {
                print("skipped: the tracepoint cannot be used here: \(reason)")
            }
            return
        }
        let path = try #require(instance)
        #expect(path.hasPrefix("\(TraceInstance.root)/instances/\(TraceInstance.prefix)\(getpid())"))
        #expect(Posix.exists(path))

        var latencies: [Duration] = []
        var sockets: [TestSocket] = []
        defer { sockets.forEach { $0.close() } }
        let deadline = ContinuousClock.now + .seconds(20)
        for _ in 0..<50 where ContinuousClock.now < deadline {
            // IPv6 only: these 50 kernel-chosen ports must not collide with the IPv4 ports other
            // suites pick with bind-read-close (LoopbackClient.freePort) and listen on a moment later.
            let socket = try TestSocket("::1")
            sockets.append(socket)
            let before = ContinuousClock.now
            try socket.listen()
            let appeared = try #require(log.wait(for: .seconds(2), EventLog.appeared(socket)))
            latencies.append(appeared.1 - before)
            if case .appeared(let listener, let owner) = appeared.0 {
                #expect(listener.inode == socket.inode)
                #expect(owner?.pid == getpid())
            }
        }
        latencies.sort()
        print("tracepoint: listen(2) → appeared over \(latencies.count) listeners: "
            + "p50 \(latencies[latencies.count / 2]), max \(latencies.last!)")
        #expect(latencies.count >= 10)
        // Well under the safety poll's second: the records, not the reconciling listing, found them.
        #expect(latencies[latencies.count / 2] < .milliseconds(100))

        for socket in sockets.prefix(5) {
            socket.close()
            #expect(log.wait(for: .seconds(2), EventLog.disappeared(socket)) != nil)
        }
    }

    @Test func staleInstancesOfDeadProcessesAreRemoved() throws {
        guard Posix.exists(TraceInstance.root + "/instances") else { return }
        // No process has a pid this high (pid_max is at most 2^22).
        let stale = ["", "-2"].map { "\(TraceInstance.root)/instances/\(TraceInstance.prefix)\(1 << 23)\($0)" }
        for path in stale { try Posix.makeDirectory(path) }
        defer { for path in stale { try? Posix.removeDirectory(path) } }
        // A live process's instance stays (this one's, under a name no watch uses).
        let live = "\(TraceInstance.root)/instances/\(TraceInstance.prefix)\(getpid())-999999"
        try Posix.makeDirectory(live)
        defer { try? Posix.removeDirectory(live) }
        TraceInstance.removeStale()
        #expect(stale.allSatisfy { !Posix.exists($0) })
        #expect(Posix.exists(live))
    }

    @Test func twoWatchesInOneProcessHaveTheirOwnInstances() throws {
        let first = ListenerWatch(queue: queue) { _ in }
        let second = ListenerWatch(queue: queue) { _ in }
        guard try first.start() == .tracepoint, try second.start() == .tracepoint else { return }
        let (one, two) = (try #require(first.tracefsInstance), try #require(second.tracefsInstance))
        #expect(one != two)
        first.stop()
        #expect(!Posix.exists(one) && Posix.exists(two))
        second.stop()
        #expect(!Posix.exists(two))
    }

    @Test func stopIsIdempotentAndAStoppedWatchDoesNotStartAgain() throws {
        let watch = ListenerWatch(prefer: .polling, queue: queue) { _ in }
        _ = try watch.start()
        watch.stop()
        watch.stop()
        #expect(throws: ListenerError.alreadyStarted) { try watch.start() }
        ListenerWatch(queue: queue) { _ in }.stop()  // Never started.
    }
}
