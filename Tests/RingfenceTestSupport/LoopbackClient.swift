import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Blocking TCP clients over loopback, for driving a guard's listeners from the test's side
/// (the front end's and the relay's tests).
public enum LoopbackClient {
    /// A port nothing listens on, from 20000-31999: below the kernel's ephemeral ports (which
    /// start at 32768), handed out by this process in turn. A port the kernel picked for another
    /// test's bind(0), read back and closed, could be taken again by the kernel for a third
    /// test's socket before the caller listened on it (tests run in parallel); these cannot.
    public static func freePort() -> UInt16 {
        for _ in 0..<portSpan {
            let turn = nextPort.add(1, ordering: .relaxed).oldValue
            let port = UInt16(20000 + (portStart + turn) % portSpan)
            if isFree(port) { return port }
        }
        return 0
    }

    private static let portSpan = 12000
    /// Where this process starts in the range (by pid), so that two test processes at once
    /// rarely meet.
    private static let portStart = Int(getpid()) * 211 % portSpan
    private static let nextPort = Atomic<Int>(0)

    /// Whether a listener could bind 0.0.0.0:`port` now.
    private static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// Binds `fd` to 127.0.0.1 on a port the kernel picks, and returns the port.
    public static func bind(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Connects from `source` (any 127.0.0.0/8 address) to 127.0.0.1:`port`; the socket, open,
    /// with a 2 s receive timeout.
    public static func connect(from source: String = "127.0.0.1", to port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        remote.sin_port = port.bigEndian
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, size) } }
        _ = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, size) }
        }
        return fd
    }

    /// Whether the guard closed `fd`'s connection (end of input or a reset within 2 s).
    public static func isClosed(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, 0)
        return count == 0 || (count < 0 && (errno == ECONNRESET || errno == EPIPE))
    }
}

/// Polls `condition` every 10 ms for up to 3 s.
public func eventually(_ condition: () -> Bool) async throws -> Bool {
    for _ in 0..<300 {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
