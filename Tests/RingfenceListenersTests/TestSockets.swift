import Dispatch
import RingfenceAddresses
import Synchronization
import Testing

@testable import RingfenceListeners
@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket of the test's own, bound to a kernel-chosen port; `listen()` makes it a listener.
final class TestSocket {
    let fd: Int32
    let port: UInt16
    let address: IPAddress
    /// The socket's inode: what sock_diag and /proc/PID/fd name it by.
    let inode: UInt64

    init(_ text: String) throws {
        address = IPAddress(text)!
        let socketAddress = SocketAddress(address: address, port: 0)
        fd = try Posix.must { socket(socketAddress.family, Int32(SOCK_STREAM.rawValue), 0) }
        try Posix.bind(fd, socketAddress)
        port = Self.localPort(fd)
        var status = stat()
        _ = fstat(fd, &status)
        inode = UInt64(status.st_ino)
    }

    func listen() throws { try Posix.listen(fd, backlog: 16) }

    /// A listener on 127.0.0.1 and a client connected to it, not yet accepted: the caller closes both.
    static func connectedPair() throws -> (listener: TestSocket, client: TestSocket) {
        let listener = try TestSocket("127.0.0.1")
        try listener.listen()
        let client = try TestSocket("127.0.0.1")
        _ = try Posix.connect(client.fd, SocketAddress(address: listener.address, port: listener.port))
        return (listener, client)
    }


    private var closed = false

    /// Closes the socket once; later calls do nothing (a second close could close a descriptor
    /// another test running in parallel has just been given the same number).
    func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(fd)
    }

    static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return SocketAddress(storage: storage)!.port
    }
}

/// What a watch's handler received, with the time each event arrived; `wait` blocks (bounded)
/// until an event matches.
final class EventLog: Sendable {
    private let entries = Mutex<[(ListenerEvent, ContinuousClock.Instant)]>([])
    private let signal = DispatchSemaphore(value: 0)

    var handler: @Sendable ([ListenerEvent]) -> Void {
        { [self] events in
            let now = ContinuousClock.now
            entries.withLock { $0 += events.map { ($0, now) } }
            signal.signal()
        }
    }

    /// The first event matching `match` and when it arrived, waiting at most `timeout`.
    func wait(for timeout: Duration, _ match: (ListenerEvent) -> Bool) -> (ListenerEvent, ContinuousClock.Instant)? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let found = entries.withLock({ $0.first { match($0.0) } }) { return found }
            let left = deadline - ContinuousClock.now
            if left <= .zero { return nil }
            _ = signal.wait(timeout: .now() + .nanoseconds(Int(left.nanoseconds)))
        }
    }

    /// By inode, not port: a port another test (or process) listened on before may be reused.
    static func appeared(_ socket: TestSocket) -> (ListenerEvent) -> Bool {
        let inode = socket.inode
        return { if case .appeared(let listener, _) = $0 { listener.inode == inode && listener.port == socket.port } else { false } }
    }

    static func disappeared(_ socket: TestSocket) -> (ListenerEvent) -> Bool {
        let inode = socket.inode
        return { if case .disappeared(let listener) = $0 { listener.inode == inode } else { false } }
    }
}
