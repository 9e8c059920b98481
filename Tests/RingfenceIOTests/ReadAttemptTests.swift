import Dispatch
import RingfenceSockets
import Testing

@testable import RingfenceIO

#if canImport(Glibc)
import Glibc
#endif

/// How a `Channel` schedules its owner's read attempts, the one place every owner (pumps,
/// `Connection`, listeners) waits for bytes: after a hang-up libdispatch reports once, bytes left
/// queued must still be read when the owner asks again, and no attempt may run after close.
@Suite struct ReadAttemptTests {
    /// A channel whose handler reads one byte per attempt, and the bytes it has read.
    final class OneByteReader: @unchecked Sendable {
        let received = ReceivedBytes()
        var channel: Channel!
        var attempts = 0
        /// What the handler does after each byte: nothing, ask again, or pause reading.
        var afterByte: (Channel) -> Void = { _ in }

        init(fd: Int32, loop: EventLoop) {
            channel = Channel(
                socket: Socket(adopting: fd), loop: loop,
                onReadable: { [unowned self] in
                    attempts += 1
                    var byte: UInt8 = 0
                    if Glibc.read(fd, &byte, 1) == 1 {
                        received.append([byte])
                        afterByte(channel)
                    }
                }, onWritable: {})
        }
    }

    @Test func bytesLeftBehindAHangUpAreReadWhenTheOwnerAsksAgain() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let reader = OneByteReader(fd: local, loop: loop)
        reader.afterByte = { $0.readAgain() }
        _ = "hangup".withCString { Glibc.write(remote, $0, 6) }
        Glibc.close(remote)
        loop.queue.sync { reader.channel.setReading(true) }
        try await waitUntil { reader.received.bytes == Array("hangup".utf8) }
        loop.queue.sync { reader.channel.close() }
    }

    @Test func turningReadingBackOnReadsWhatWasQueuedMeanwhile() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let reader = OneByteReader(fd: local, loop: loop)
        // Backpressure after every byte: reading stops, and the test turns it back on.
        reader.afterByte = { $0.setReading(false) }
        _ = "queued".withCString { Glibc.write(remote, $0, 6) }
        Glibc.close(remote)
        for count in 1...6 {
            loop.queue.sync { reader.channel.setReading(true) }
            try await waitUntil { reader.received.bytes.count == count }
        }
        #expect(reader.received.bytes == Array("queued".utf8))
        loop.queue.sync { reader.channel.close() }
    }

    @Test func noAttemptRunsAfterCloseAndQueuedAttemptsFold() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let reader = OneByteReader(fd: local, loop: loop)
        let attemptsAfterClose: Int = try await withCheckedThrowingContinuation { done in
            loop.queue.async {
                reader.channel.setReading(true)
                reader.channel.setPolled(true)  // no source events: only scheduled attempts count
                reader.channel.setPolled(false)
                let before = reader.attempts
                for _ in 0..<5 { reader.channel.readAgain() }
                loop.queue.async {
                    // The five asks (and setReading's own) ran as one attempt.
                    let folded = reader.attempts - before
                    reader.channel.readAgain()
                    reader.channel.close()
                    let closedAt = reader.attempts
                    loop.queue.async {
                        done.resume(returning: reader.attempts - closedAt + (folded == 1 ? 0 : 100))
                    }
                }
            }
        }
        #expect(attemptsAfterClose == 0)
        Glibc.close(remote)
    }

    @Test func aNudgeRetriesAWriteItWaitsOnAndAReadWithoutAnEvent() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = ChannelTests.socketPair()
        let writes = ReceivedBytes()
        let reads = ReceivedBytes()
        let channel = Channel(socket: Socket(adopting: local), loop: loop, onReadable: { reads.append([1]) }, onWritable: { writes.append([1]) })
        loop.queue.sync {
            channel.nudge()  // neither reading nor writing: nothing runs
            #expect(reads.bytes.isEmpty && writes.bytes.isEmpty)
            channel.setReading(true)
            channel.setPolled(true)
            let readsBefore = reads.bytes.count
            channel.nudge()
            #expect(reads.bytes.count == readsBefore + 1)
            #expect(writes.bytes.isEmpty)
            channel.close()
            channel.nudge()
            #expect(reads.bytes.count == readsBefore + 1)
        }
        Glibc.close(remote)
    }
}
