import RingfenceIO
import RingfenceSockets
import RingfenceZMTP
import Testing

@testable import RingfenceBroker

#if canImport(Glibc)
import Glibc
#endif

/// A subscriber's queue as flow control sees it: messages that wait behind a full socket (the
/// backlog) reach the peer whole and in order once it reads, the marks and the low-water mark,
/// and `max_stall`. Over a socket pair; the peer is this test, reading or not.
@Suite struct SubscriberSessionTests {
    static let peer = SocketAddress(address: .v4(0x7F00_0001), port: 1)

    static func limits(hwmMessages: Int = 1000, hwmBytes: Int = 64 << 20, maxStall: Duration = .seconds(2)) -> BrokerLimits {
        BrokerLimits(
            hwmMessages: hwmMessages, hwmBytes: hwmBytes, maxTopicBytes: 245, maxSubscriptions: 8,
            maxMessageBytes: 8 << 20, handshakeTimeout: .seconds(5), onOverflow: .block, maxStall: maxStall, busyPoll: .zero)
    }

    /// Message `index`: one frame of `size` bytes, the index's low byte throughout but for the
    /// first two, which hold the index (big-endian).
    static func message(_ index: Int, size: Int) -> BrokerMessage {
        let body = SharedBytes(count: size)
        body.withUnsafeMutableBytes { bytes in
            memset(bytes.baseAddress!, Int32(index & 0xFF), size)
            bytes[0] = UInt8(truncatingIfNeeded: index >> 8)
            bytes[1] = UInt8(truncatingIfNeeded: index)
        }
        return BrokerMessage(frames: [body])
    }

    /// A session on one end of a socket pair, and the other end.
    static func session(_ limits: BrokerLimits, loop: EventLoop) -> (SubscriberSession, Int32) {
        var fds: [Int32] = [0, 0]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
        let session = SubscriberSession(id: 1, socket: Socket(adopting: fds[0]), peer: peer, loop: loop, limits: limits)
        loop.queue.sync {
            // What the broker does when the connection drains.
            session.connection.onDrained = { [unowned session] in session.refill() }
            session.start()
        }
        return (session, fds[1])
    }

    /// Reads from `fd` until `count` bytes have come, 5 s pass, or (with `quiet`) nothing came
    /// for 50 ms.
    static func read(_ fd: Int32, count: Int, quiet: Bool = false) async throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var idle = 0
        for _ in 0..<2500 where result.count < count && !(quiet && idle >= 25) {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, count - result.count)) }
            if got > 0 {
                result += buffer[0..<got]
                idle = 0
            } else {
                idle += 1
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        return result
    }

    @Test func messagesBehindAFullSocketReachAReaderWholeAndInOrder() async throws {
        let loop = EventLoop(index: 0)
        let (session, remote) = Self.session(Self.limits(), loop: loop)
        let opening = Handshake(localType: .xpub, minor: 1, maxCommandBytes: 512).opening.count
        let size = 64 << 10
        let count = 200
        // More than the socket pair's buffers take: the rest waits behind it.
        let backlogged = loop.queue.sync {
            for index in 0..<count {
                #expect(session.deliver(Self.message(index, size: size)) == .queued)
                session.connection.flush()
            }
            return session.queuedBytes
        }
        #expect(backlogged > 0)
        #expect(loop.queue.sync { session.queuedMessages } > 0)
        let stream = try await Self.read(remote, count: opening + count * (size + 9))
        #expect(stream.count == opening + count * (size + 9))
        var offset = opening
        for index in 0..<count where offset + 9 + size <= stream.count {
            // A long frame header: flags (LONG), then the size in 8 bytes, big-endian.
            #expect(stream[offset] == 0x02, "message \(index): flags \(stream[offset])")
            let declared = stream[(offset + 1)..<(offset + 9)].reduce(0) { $0 << 8 | Int($1) }
            #expect(declared == size, "message \(index)")
            let body = stream[(offset + 9)..<(offset + 9 + size)]
            #expect(Int(body[offset + 9]) << 8 | Int(body[offset + 10]) == index, "message \(index) out of order")
            #expect(body.dropFirst(2).allSatisfy { $0 == UInt8(index & 0xFF) }, "message \(index) differs")
            offset += 9 + size
        }
        try await waitUntilQueued(session, loop: loop, is: 0)
        loop.queue.sync { session.close() }
        Glibc.close(remote)
    }

    @Test func aQueueIsFullAtAMarkAndLetsTheEngineGoAtHalfOfBoth() async throws {
        let loop = EventLoop(index: 0)
        let (session, remote) = Self.session(Self.limits(hwmMessages: 10), loop: loop)
        loop.queue.sync {
            // The socket takes the first messages: fill until the queue holds 10.
            var index = 0
            while session.queuedMessages < 10 && index < 10_000 {
                _ = session.deliver(Self.message(index, size: 64 << 10))
                session.connection.flush()
                index += 1
            }
            #expect(session.isFull)
            #expect(!session.isBelowLowWater)
        }
        // The reader takes everything: the queue empties, below half of both marks.
        var drained = false
        for _ in 0..<500 where !drained {
            _ = try await Self.read(remote, count: 1 << 20, quiet: true)
            drained = loop.queue.sync { session.queuedMessages == 0 }
        }
        #expect(drained)
        loop.queue.sync {
            #expect(!session.isFull)
            #expect(session.isBelowLowWater)
            session.close()
        }
        Glibc.close(remote)
    }

    @Test func aSubscriberThatTakesNoMessageForMaxStallIsStalledAndOneThatReadsIsNot() async throws {
        let loop = EventLoop(index: 0)
        let (session, remote) = Self.session(Self.limits(maxStall: .milliseconds(100)), loop: loop)
        // Nothing queued: never stalled, however long.
        try await Task.sleep(for: .milliseconds(150))
        _ = try await Self.read(remote, count: 1 << 20, quiet: true)  // the greeting and READY
        #expect(loop.queue.sync { session.queuedMessages == 0 && !session.isStalled(now: .now) })
        loop.queue.sync {
            for index in 0..<100 {
                _ = session.deliver(Self.message(index, size: 64 << 10))
                session.connection.flush()
            }
        }
        #expect(loop.queue.sync { !session.isStalled(now: .now) })
        // Nothing read: stalled once max_stall has passed since the last message left (checked
        // until it is, within 2 s: on a busy machine the loop may still be writing for a while,
        // and a message leaving restarts the clock).
        var stalled = false
        for _ in 0..<40 where !stalled {
            try await Task.sleep(for: .milliseconds(50))
            stalled = loop.queue.sync { session.isStalled(now: .now) }
        }
        #expect(stalled)
        // It reads: once the socket takes more, a whole message has left and the clock starts
        // again (a socket pair signals room only when most of its buffer is free, so read what
        // is there, in turns, until then). The clock restarting is what is checked, not the
        // verdict a moment later: on a busy machine the next message may take max_stall again.
        let (stalledSince, stalledFor) = loop.queue.sync { (ContinuousClock.now, session.stalledFor(now: .now)) }
        var moving = false
        for _ in 0..<200 where !moving {
            _ = try await Self.read(remote, count: 64 << 10, quiet: true)
            moving = loop.queue.sync {
                let now = ContinuousClock.now
                return session.stalledFor(now: now) < (now - stalledSince) + stalledFor
            }
        }
        #expect(moving)
        loop.queue.sync { session.close() }
        Glibc.close(remote)
    }

    private func waitUntilQueued(_ session: SubscriberSession, loop: EventLoop, is bytes: Int) async throws {
        for _ in 0..<200 {
            if loop.queue.sync(execute: { session.queuedBytes }) == bytes { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the queue did not reach \(bytes) bytes within 2 s")
    }
}
