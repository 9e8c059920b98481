import Dispatch
import RingfenceAddresses
import RingfenceSockets
import Testing

@testable import RingfenceIO

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ChannelTests {
    /// A connected, non-blocking pair of stream sockets.
    static func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        let result = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
        precondition(result == 0)
        return (fds[0], fds[1])
    }

    /// Whether the other end of a socket pair has been closed: its peer reads end of input.
    /// (Asking whether the descriptor number is still open would race with other tests, which
    /// may be handed the same number the moment it is freed.)
    static func peerClosed(_ remote: Int32) -> Bool {
        var byte: UInt8 = 0
        while true {
            let count = Glibc.read(remote, &byte, 1)
            if count == 0 { return true }
            if count < 0 { return false }
        }
    }

    @Test func readsWhenReadingIsOnAndClosesTheDescriptorOnlyAfterCancellation() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = Self.socketPair()
        let received = ReceivedBytes()
        let channel = Channel(
            socket: Socket(adopting: local), loop: loop,
            onReadable: {
                var buffer = [UInt8](repeating: 0, count: 64)
                let count = buffer.withUnsafeMutableBytes { Glibc.read(local, $0.baseAddress, $0.count) }
                if count > 0 { received.append(Array(buffer[0..<count])) }
            },
            onWritable: {})
        _ = "hello".withCString { Glibc.write(remote, $0, 5) }
        // Reading is off: nothing is delivered.
        try await Task.sleep(for: .milliseconds(100))
        #expect(received.bytes.isEmpty)
        loop.queue.sync { channel.setReading(true) }
        try await waitUntil { received.bytes == Array("hello".utf8) }
        loop.queue.sync { channel.close() }
        try await waitUntil { Self.peerClosed(remote) }
        Glibc.close(remote)
    }

    @Test func aChannelClosedBeforeEitherDirectionWasTurnedOnClosesItsDescriptorAtOnce() async throws {
        // Its sources are made on first use: with none made, close has nothing to cancel.
        let loop = EventLoop(index: 0)
        let (local, remote) = Self.socketPair()
        let channel = Channel(socket: Socket(adopting: local), loop: loop, onReadable: {}, onWritable: {})
        loop.queue.sync { channel.close() }
        #expect(Self.peerClosed(remote))
        Glibc.close(remote)
    }

    @Test func aChannelThatOnlyReadClosesItsDescriptorAfterTheReadSourceIsCancelled() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = Self.socketPair()
        let channel = Channel(socket: Socket(adopting: local), loop: loop, onReadable: {}, onWritable: {})
        loop.queue.sync {
            channel.setReading(true)
            channel.setReading(false)
            channel.close(reset: false)
        }
        try await waitUntil { Self.peerClosed(remote) }
        Glibc.close(remote)
    }

    @Test func aPolledChannelsReadSourceStaysQuietUntilPollingStops() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = Self.socketPair()
        let events = ReceivedBytes()
        let channel = Channel(
            socket: Socket(adopting: local), loop: loop, onReadable: { events.append([1]) }, onWritable: {})
        loop.queue.sync {
            channel.setReading(true)
            channel.setPolled(true)
        }
        _ = "x".withCString { Glibc.write(remote, $0, 1) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(events.bytes.isEmpty, "the owner polls: no event while polled")
        // Reading turned off and on while polled changes nothing either; stopping polling does.
        loop.queue.sync {
            channel.setReading(false)
            channel.setReading(true)
            #expect(channel.isReading && channel.isPolled)
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(events.bytes.isEmpty)
        loop.queue.sync { channel.setPolled(false) }
        try await waitUntil { !events.bytes.isEmpty }
        // Closing while polled releases the suspended source and the descriptor.
        loop.queue.sync {
            channel.setPolled(true)
            channel.close()
        }
        try await waitUntil { Self.peerClosed(remote) }
        Glibc.close(remote)
    }

    @Test func closingANeverActivatedChannelIsSafe() async throws {
        let loop = EventLoop(index: 0)
        let (local, remote) = Self.socketPair()
        let channel = Channel(socket: Socket(adopting: local), loop: loop, onReadable: {}, onWritable: {})
        loop.queue.sync { channel.close(reset: false) }
        try await waitUntil { Self.peerClosed(remote) }
        Glibc.close(remote)
    }
}

/// Bytes gathered on a loop and read from the test.
final class ReceivedBytes: @unchecked Sendable {
    private let lock = DispatchQueue(label: "received")
    private var storage: [UInt8] = []
    func append(_ more: [UInt8]) { lock.sync { storage += more } }
    var bytes: [UInt8] { lock.sync { storage } }
}

/// Polls `condition` every 10 ms for up to 2 s.
func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<200 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within 2 s")
}
