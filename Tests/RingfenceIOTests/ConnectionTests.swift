import Dispatch
import RingfenceSockets
import Testing

@testable import RingfenceIO

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ConnectionTests {
    /// Reads everything `fd` has now (non-blocking).
    static func drain(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return result }
            result += buffer[0..<count]
        }
    }

    @Test func deliversReadsAndTheEndOfInput() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let received = ReceivedBytes()
        let ended = ReceivedBytes()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 1024)
        loop.queue.sync {
            connection.onRead = { received.append(Array($0)) }
            connection.onEndOfInput = { ended.append([1]) }
            connection.setReading(true)
        }
        _ = "ring".withCString { Glibc.write(remote, $0, 4) }
        _ = "fence".withCString { Glibc.write(remote, $0, 5) }
        Glibc.shutdown(remote, Int32(SHUT_WR))
        try await waitUntil { received.bytes == Array("ringfence".utf8) && ended.bytes == [1] }
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    /// Spinning, and sleeping in ppoll(2) between reads (the broker's upstream link).
    @Test(arguments: [BusyPoller.Mode.spin, .wait])
    func busyPollingReadsWhilePolledAndHandsTheSocketBackWhenQuiet(mode: BusyPoller.Mode) async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let received = ReceivedBytes()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 1024)
        loop.queue.sync {
            connection.busyPollMode = mode
            // Long enough that a test host busy with other suites still checks within it.
            connection.busyPoll = .seconds(1)
            connection.onRead = { received.append(Array($0)) }
            connection.setReading(true)
        }
        _ = "a".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("a".utf8) }
        // Within the window: read by polling.
        let sentB = ContinuousClock.now
        _ = "b".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("ab".utf8) }
        let polling = loop.queue.sync { connection.isBusyPolling }
        // Polling must still be on if we asked within the window of reading "b" (a host busy
        // with other suites may delay this task past it; then there is nothing to check).
        if ContinuousClock.now - sentB < .milliseconds(900) { #expect(polling) }
        // Well after it: the read source is back in charge and wakes the loop.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(!loop.queue.sync { connection.isBusyPolling })
        _ = "c".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("abc".utf8) }
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func sharedArraysAreWrittenInOrderAndTheQueueIsBounded() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 8)
        let message = Array("abcd".utf8)
        // The same array queued twice (a fan-out shares one buffer); a write bigger than the
        // whole queue is refused.
        let accepted = loop.queue.sync {
            [connection.write(message), connection.write(message), connection.write([UInt8](repeating: 0, count: 9))]
        }
        #expect(accepted == [true, true, false])
        var received: [UInt8] = []
        for _ in 0..<200 where received.count < 8 {
            received += Self.drain(remote)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(received == Array("abcdabcd".utf8))
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func smallBuffersAreCopiedLargeOnesSharedAndTheStreamKeepsItsOrder() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 8 << 20)
        // Messages of a small header, a body of 1-3000 bytes (copied into tails) and every
        // twentieth a 40 KiB body (queued by reference), in three batches: the second queued at
        // once behind the first (whose tails are still queued, partly written), the third once
        // the peer has read everything (the tail starts again from its start).
        var batches: [[[SharedBytes]]] = [[], [], []]
        var expected: [[UInt8]] = [[], [], []]
        for index in 0..<600 {
            let header = SharedBytes([UInt8(index & 0xFF), 0xEE])
            let bodySize = index % 20 == 19 ? 40 << 10 : 1 + (index * 37) % 3000
            let body = SharedBytes([UInt8](repeating: UInt8(truncatingIfNeeded: index &* 7), count: bodySize))
            batches[index / 200].append([header, body])
            expected[index / 200] += header.array + body.array
        }
        let accepted = loop.queue.sync {
            let first = batches[0].map { connection.write($0, copyingUpTo: 4096, flush: false) }
            connection.flush()
            return first + batches[1].map { connection.write($0, copyingUpTo: 4096) }
        }
        #expect(accepted.allSatisfy { $0 })
        #expect(loop.queue.sync { connection.queuedBytes } > 0)
        var received: [UInt8] = []
        for _ in 0..<1000 where received.count < expected[0].count + expected[1].count {
            received += Self.drain(remote)
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(loop.queue.sync { connection.queuedBytes } == 0)
        let third = loop.queue.sync { batches[2].map { connection.write($0, copyingUpTo: 4096) } }
        #expect(third.allSatisfy { $0 })
        let all = expected.flatMap { $0 }
        for _ in 0..<1000 where received.count < all.count {
            received += Self.drain(remote)
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(received.count == all.count)
        // Compared as one Bool: a failed array comparison would diff megabytes.
        let same = received == all
        #expect(same, "the bytes received differ from the bytes written")
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func aCopiedWriteOverTheLimitQueuesNothing() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 10)
        let results = loop.queue.sync {
            [
                connection.write([SharedBytes(Array("abc".utf8)), SharedBytes(Array("def".utf8))], copyingUpTo: 64),
                connection.write([SharedBytes(Array("ghi".utf8)), SharedBytes(Array("jklmnopqr".utf8))], copyingUpTo: 64),
                connection.write([SharedBytes(Array("q".utf8))], copyingUpTo: 64),
            ]
        }
        #expect(results == [true, false, true])
        var received: [UInt8] = []
        for _ in 0..<200 where received.count < 7 {
            received += Self.drain(remote)
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(received == Array("abcdefq".utf8))
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func aPeerThatDoesNotReadFillsTheQueueAndDrainingIsReported() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 4 << 20)
        let drained = ReceivedBytes()
        let chunk = [UInt8](repeating: 7, count: 64 << 10)
        var written = 0
        loop.queue.sync {
            connection.onDrained = { drained.append([1]) }
            while connection.write(chunk) { written += chunk.count }
        }
        // The socket buffers took part; the queue holds the rest, up to its limit.
        let queued = loop.queue.sync { connection.queuedBytes }
        #expect(queued > 0 && queued <= 4 << 20)
        #expect(written >= 4 << 20 - chunk.count)
        var total = 0
        for _ in 0..<500 where total < written {
            total += Self.drain(remote).count
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(total == written)
        try await waitUntil { !drained.bytes.isEmpty }
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func shutdownWriteWaitsForTheQueue() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 1 << 20)
        loop.queue.sync {
            _ = connection.write(Array("last words".utf8))
            connection.shutdownWrite()
            #expect(!connection.write([1]))
        }
        var got: [UInt8] = []
        var sawEnd = false
        for _ in 0..<200 where !sawEnd {
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(remote, $0.baseAddress, $0.count) }
            if count > 0 { got += buffer[0..<count] } else if count == 0 { sawEnd = true } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(got == Array("last words".utf8))
        #expect(sawEnd)
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func aResetPeerIsReportedAsAnError() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let errors = ReceivedBytes()
        let connection = Connection(socket: Socket(adopting: local), loop: loop, writeLimit: 1 << 20)
        loop.queue.sync { connection.onError = { _ in errors.append([1]) } }
        Glibc.close(remote)
        loop.queue.sync { _ = connection.write([1, 2, 3]) }
        try await waitUntil { errors.bytes == [1] }
        #expect(loop.queue.sync { connection.isClosed })
    }
}
