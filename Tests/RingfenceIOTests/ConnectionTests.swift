import Dispatch
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
        let connection = Connection(fd: local, loop: loop, writeLimit: 1024)
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

    @Test func busyPollingReadsWhilePolledAndHandsTheSocketBackWhenQuiet() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let received = ReceivedBytes()
        let connection = Connection(fd: local, loop: loop, writeLimit: 1024)
        loop.queue.sync {
            connection.busyPoll = .milliseconds(100)
            connection.onRead = { received.append(Array($0)) }
            connection.setReading(true)
        }
        _ = "a".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("a".utf8) }
        // Within the window: read by polling.
        _ = "b".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("ab".utf8) }
        // Well after it: the read source is back in charge and wakes the loop.
        try await Task.sleep(for: .milliseconds(400))
        _ = "c".withCString { Glibc.write(remote, $0, 1) }
        try await waitUntil { received.bytes == Array("abc".utf8) }
        loop.queue.sync { connection.close() }
        Glibc.close(remote)
    }

    @Test func sharedArraysAreWrittenInOrderAndTheQueueIsBounded() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(fd: local, loop: loop, writeLimit: 8)
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

    @Test func aPeerThatDoesNotReadFillsTheQueueAndDrainingIsReported() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let connection = Connection(fd: local, loop: loop, writeLimit: 4 << 20)
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
        let connection = Connection(fd: local, loop: loop, writeLimit: 1 << 20)
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
        let connection = Connection(fd: local, loop: loop, writeLimit: 1 << 20)
        loop.queue.sync { connection.onError = { _ in errors.append([1]) } }
        Glibc.close(remote)
        loop.queue.sync { _ = connection.write([1, 2, 3]) }
        try await waitUntil { errors.bytes == [1] }
        #expect(loop.queue.sync { connection.isClosed })
    }
}
