import CRingfenceLinux
import RingfenceAddresses
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What a non-blocking call did: its result, or "would block" (EAGAIN): try again when ready.
/// Noncopyable when its result is (an accepted `Socket`).
public enum IOResult<T: ~Copyable>: ~Copyable {
    case done(T)
    case wouldBlock
}

extension IOResult: Copyable where T: Copyable {}

/// The one place Ringfence makes socket and pipe syscalls.
///
/// Each wrapper retries EINTR, turns EAGAIN/EWOULDBLOCK into `.wouldBlock` where the call can
/// block, and throws any other errno as swift-system's `Errno`. `@inline(never)` keeps errno
/// from being clobbered between the call and its read.
public enum Posix {
    @inline(never)
    static func call(_ body: () -> Int) throws(Errno) -> IOResult<Int> {
        while true {
            let result = body()
            if result >= 0 { return .done(result) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw Errno(rawValue: code)
        }
    }

    /// Like `call`, for calls that never return EAGAIN.
    @inline(never)
    static func must(_ body: () -> Int32) throws(Errno) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw Errno(rawValue: errno)
        }
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var value = value
        _ = try must { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// TCP_NODELAY on each socket: a relay or broker must not add Nagle delays that neither
    /// endpoint asked for.
    public static func setNoDelay(_ fds: Int32...) {
        var on: Int32 = 1
        for fd in fds {
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// SO_LINGER with a zero timeout: `close` then sends a reset instead of a FIN.
    public static func setResetOnClose(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
    }

    public static func bind(_ fd: Int32, _ address: SocketAddress) throws(Errno) {
        _ = try address.withSockAddr { pointer, length throws(Errno) in try must { Glibc.bind(fd, pointer, length) } }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(Errno) {
        _ = try must { Glibc.listen(fd, backlog) }
    }

    /// Accepts one connection as a non-blocking, close-on-exec socket, with the peer's address;
    /// the caller owns the socket.
    public static func accept(_ fd: Int32) throws(Errno) -> Accepted {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try withUnsafeMutablePointer(to: &storage) { pointer throws(Errno) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(Errno) in
                try call { Int(CRingfenceLinux_accept4(fd, raw, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))) }
            }
        }
        guard case .done(let client) = result else { return .wouldBlock }
        guard let peer = SocketAddress(storage) else {
            Glibc.close(Int32(client))
            throw Errno.addressFamilyNotSupported
        }
        return .connection(Socket(adopting: Int32(client)), peer: peer)
    }

    /// Starts a non-blocking connect. `.done` means connected at once; `.wouldBlock` means in
    /// progress: wait for writability, then read `pendingError`.
    public static func connect(_ fd: Int32, _ address: SocketAddress) throws(Errno) -> IOResult<Void> {
        let result = address.withSockAddr { pointer, length in Glibc.connect(fd, pointer, length) }
        if result == 0 { return .done(()) }
        switch errno {
        case EINPROGRESS, EINTR, EALREADY: return .wouldBlock
        default: throw Errno(rawValue: errno)
        }
    }

    /// SO_ERROR: the outcome of a non-blocking connect (nil for success).
    public static func pendingError(_ fd: Int32) -> Errno? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return Errno(rawValue: errno) }
        return value == 0 ? nil : Errno(rawValue: value)
    }

    /// The destination a connection had before a netfilter REDIRECT (SO_ORIGINAL_DST).
    public static func originalDestination(_ fd: Int32, family: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // SO_ORIGINAL_DST (IPv4, SOL_IP) and IP6T_SO_ORIGINAL_DST (IPv6, SOL_IPV6) are both 80.
        let level = family == AF_INET6 ? Int32(IPPROTO_IPV6) : Int32(IPPROTO_IP)
        guard getsockopt(fd, level, 80, &storage, &length) == 0 else { return nil }
        return SocketAddress(storage)
    }

    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try call { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    public static func write(_ fd: Int32, from buffer: UnsafeRawBufferPointer) throws(Errno) -> IOResult<Int> {
        try call { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Gathered write of the given buffers (writev), without SIGPIPE.
    public static func writeVectors(_ fd: Int32, _ vectors: [iovec]) throws(Errno) -> IOResult<Int> {
        var header = msghdr()
        return try vectors.withUnsafeBufferPointer { buffers throws(Errno) in
            header.msg_iov = UnsafeMutablePointer(mutating: buffers.baseAddress)
            header.msg_iovlen = buffers.count
            return try call { sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// Sends one datagram gathered from `vectors` to the address in `address` (a `sockaddr` of
    /// any family: a netlink batch to the kernel, say), without SIGPIPE; blocks on a blocking socket.
    public static func sendDatagram(
        _ fd: Int32, _ vectors: [iovec], to address: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> IOResult<Int> {
        var vectors = vectors
        return try vectors.withUnsafeMutableBufferPointer { buffers throws(Errno) in
            var header = msghdr()
            header.msg_name = address.baseAddress
            header.msg_namelen = socklen_t(address.count)
            header.msg_iov = buffers.baseAddress
            header.msg_iovlen = buffers.count
            return try call { sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// Moves up to `count` bytes between a socket and a pipe without copying them to user space.
    public static func splice(from source: Int32, to destination: Int32, count: Int) throws(Errno) -> IOResult<Int> {
        try call { CRingfenceLinux_splice(source, destination, count, CRingfenceLinux_SPLICE_F_MOVE | CRingfenceLinux_SPLICE_F_NONBLOCK) }
    }

    /// A non-blocking, close-on-exec pipe, resized to about `capacity` bytes (the kernel rounds to
    /// pages and may cap it at /proc/sys/fs/pipe-max-size for unprivileged users).
    /// Its ends are swift-system `FileDescriptor`s: plain descriptors that their owner closes.
    public static func pipe(capacity: Int) throws(Errno) -> (read: FileDescriptor, write: FileDescriptor, capacity: Int) {
        var fds: [Int32] = [0, 0]
        _ = try must { CRingfenceLinux_pipe2(&fds, O_NONBLOCK | O_CLOEXEC) }
        let resized = CRingfenceLinux_setPipeSize(fds[1], Int32(capacity))
        let actual = resized > 0 ? Int(resized) : Int(CRingfenceLinux_getPipeSize(fds[1]))
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]), actual)
    }

    /// Waits until one of `fds` (at most 16) is readable or hung up, or `timeout` passes:
    /// ppoll(2). An interrupted or failed wait just returns; the caller's next read tells what
    /// happened.
    public static func waitReadable(_ fds: [Int32], timeout: Duration) {
        _ = fds.withUnsafeBufferPointer { buffer in
            CRingfenceLinux_waitReadable(buffer.baseAddress, Int32(buffer.count), timeout.nanoseconds)
        }
    }

    /// Waits until `fd` is writable (a non-blocking connect finished) or `timeout` passes:
    /// poll(2). Returns false on timeout; the caller reads `pendingError` either way.
    public static func waitWritable(_ fd: Int32, timeout: Duration) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let milliseconds = Int32(clamping: max(0, (timeout.nanoseconds + 999_999) / 1_000_000))
        while true {
            let result = poll(&entry, 1, milliseconds)
            if result < 0 && errno == EINTR { continue }
            return result > 0
        }
    }

    /// The address a socket is bound to (getsockname(2)): the port the kernel picked for port 0.
    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? SocketAddress(storage) : nil
    }

    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// A second descriptor, close-on-exec, for the socket `fd` refers to (F_DUPFD_CLOEXEC): the
    /// same socket (its bound port, its accept queue) under a number the new owner closes.
    public static func duplicate(_ fd: Int32) throws(Errno) -> Socket {
        Socket(adopting: try must { fcntl(fd, F_DUPFD_CLOEXEC, 0) })
    }

    /// Closes `fd`; `reset` sends an RST instead of a FIN (SO_LINGER 0). Only `Socket` closes
    /// sockets: outside this module nothing closes a descriptor by its number.
    static func close(_ fd: Int32, reset: Bool = false) {
        if reset { setResetOnClose(fd) }
        _ = Glibc.close(fd)
    }

    /// Raises the soft limit on open files to the hard limit (a relayed connection holds two
    /// descriptors, up to six while bytes move: docs/relay-sizing.md).
    /// - Returns: the soft limit before and after, and the hard limit; nil if it cannot be read.
    public static func raiseOpenFileLimit() -> (before: Int, now: Int, hard: Int)? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let before = Int(clamping: limit.rlim_cur)
        limit.rlim_cur = limit.rlim_max
        let raised = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
        return (before, raised ? Int(clamping: limit.rlim_max) : before, Int(clamping: limit.rlim_max))
    }

    /// The soft limit on open files, or nil if it cannot be read.
    public static func openFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// How many descriptors this process has open (the entries of /proc/self/fd), or nil.
    public static func openFileCount() -> Int? {
        // opendir's own descriptor is among the entries, so a readable listing is never empty.
        let entries = directoryEntries("/proc/self/fd")
        return entries.isEmpty ? nil : entries.count - 1
    }

    /// Ignores SIGPIPE process-wide: a write to a closed peer must fail with EPIPE, not kill us.
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// An IP address as is, or the first address a host name resolves to (getaddrinfo: it
    /// blocks, so never call it on a loop), with `port`.
    public static func resolve(host: String, port: UInt16) -> SocketAddress? {
        if let address = IPAddress(host) { return SocketAddress(address: address, port: port) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        guard let address = SocketAddress(storage: storage) else { return nil }
        return SocketAddress(address: address.address, port: port)
    }
}
