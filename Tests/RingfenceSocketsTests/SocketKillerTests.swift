import RingfenceAddresses
import Testing

@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// Real sockets over loopback. Each case runs on its own thread in a fresh network namespace, so a
/// kick here can never cut another suite's connections or the host's (the integration tests use
/// 127.0.0.2 and ::1 too). Needs root: SOCK_DESTROY wants CAP_NET_ADMIN, unshare(2) CAP_SYS_ADMIN.
@Suite struct SocketKillerTests {
    /// A listener, two connections from `near` (also the listener's address) and one from `far`;
    /// the kick names far's block. Only far's accepted side has a remote in it: far's client side
    /// has the remote `near`. A dual-stack listener (`::`) holds IPv4 peers as AF_INET6 sockets
    /// with `::ffff:a.b.c.d` remotes; fd00::2 is added to `lo` for the IPv6 case.
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2/32"),
        ("::", "127.0.0.1", "127.0.0.2", "127.0.0.2/32"),
        ("::1", "::1", "fd00::2", "fc00::/7"),
    ])
    func aBlockCutsOnlyItsPeersSockets(listener address: String, near: String, far: String, block: String) throws {
        let (killed, cut, others, again) = try Self.inPrivateNetwork { net in
            if far.contains(":") { try Self.addAddress(far) }
            let (listener, port) = try net.listen(on: address)
            let nearPairs = [
                try net.connect(near, to: near, port, listener), try net.connect(near, to: near, port, listener),
            ]
            let farPair = try net.connect(far, to: near, port, listener)
            let killed = try SocketKiller.destroyTCP(remote: CIDR(parsing: block))
            let cut = (Self.ending(farPair.server), Self.ending(farPair.client))
            // The listener survives: refusing a reconnection is the firewall's business.
            let again = try net.connect(far, to: near, port, listener)
            return (killed, cut, nearPairs.allSatisfy(Self.carries), Self.carries(again))
        }
        #expect(killed == 1)
        #expect(cut.0 == ECONNABORTED, "the destroyed socket's owner sees ECONNABORTED")
        #expect(cut.1 == ECONNRESET, "its peer gets a reset")
        #expect(others && again)
    }

    @Test func keptLocalPortsAreLeftAlone() throws {
        let (first, second, kept, cut) = try Self.inPrivateNetwork { net in
            let (relay, relayPort) = try net.listen(on: "127.0.0.1")
            let (other, otherPort) = try net.listen(on: "127.0.0.1")
            let viaRelay = try net.connect("127.0.0.2", to: "127.0.0.1", relayPort, relay)
            let direct = try net.connect("127.0.0.2", to: "127.0.0.1", otherPort, other)
            let block = try CIDR(parsing: "127.0.0.2/32")
            let first = try SocketKiller.destroyTCP(remote: block, keepLocalPorts: [relayPort, otherPort])
            let second = try SocketKiller.destroyTCP(remote: block, keepLocalPorts: [relayPort])
            return (first, second, Self.carries(viaRelay), Self.ending(direct.server))
        }
        #expect(first == 0)
        #expect(second == 1)
        #expect(kept)
        #expect(cut == ECONNABORTED)
    }

    @Test func onlyTheGivenLocalPortsAreCut() throws {
        let (count, kept, cut) = try Self.inPrivateNetwork { net in
            let (fenced, fencedPort) = try net.listen(on: "127.0.0.1")
            let (other, otherPort) = try net.listen(on: "127.0.0.1")
            let toFenced = try net.connect("127.0.0.2", to: "127.0.0.1", fencedPort, fenced)
            let toOther = try net.connect("127.0.0.2", to: "127.0.0.1", otherPort, other)
            let count = try SocketKiller.destroyTCP(
                remote: try CIDR(parsing: "127.0.0.2/32"), keepLocalPorts: [fencedPort], onlyLocalPorts: [fencedPort])
            return (count, Self.carries(toOther), Self.ending(toFenced.server))
        }
        #expect(count == 1)
        #expect(kept)
        #expect(cut == ECONNABORTED)
    }

    /// Blocks that hold no live socket's remote: other addresses, near misses, and a TIME_WAIT
    /// socket's (no connection left to cut; this kernel could destroy it, but we must not).
    @Test func blocksWithoutLiveSocketsGiveZero() throws {
        let (counts, live) = try Self.inPrivateNetwork { net in
            let (listener, port) = try net.listen(on: "127.0.0.1")
            let near = try net.connect("127.0.0.1", to: "127.0.0.1", port, listener)
            let far = try net.connect("127.0.0.2", to: "127.0.0.1", port, listener)
            // The server shuts down first, so its side (remote 127.0.0.3) moves to TIME_WAIT when
            // the client's FIN arrives, and leaves its descriptor in CLOSE.
            let waiting = try net.connect("127.0.0.3", to: "127.0.0.1", port, listener)
            Glibc.shutdown(waiting.server, Int32(SHUT_WR))
            Glibc.shutdown(waiting.client, Int32(SHUT_WR))
            try Self.waitUntilClosed(waiting.server)
            let blocks = ["127.0.0.3/32", "127.0.0.0/32", "127.0.0.4/30", "128.0.0.0/1", "10.0.0.0/8", "::/1"]
            let counts = try blocks.map { block throws in try SocketKiller.destroyTCP(remote: CIDR(parsing: block)) }
            return (counts, Self.carries(near) && Self.carries(far))
        }
        #expect(counts == [0, 0, 0, 0, 0, 0])
        #expect(live)
    }

    @Test func nothingOutsideItsNetworkNamespaceIsTouched() throws {
        let net = Loopback()  // In the test process's own namespace.
        defer { net.closeAll() }
        let (listener, port) = try net.listen(on: "127.0.0.1")
        let host = try net.connect("127.0.0.9", to: "127.0.0.1", port, listener)
        let killed = try Self.inPrivateNetwork { _ in
            try SocketKiller.destroyTCP(remote: CIDR(parsing: "127.0.0.9/32"))
        }
        #expect(killed == 0)
        #expect(Self.carries(host))
    }
}

extension SocketKillerTests {
    /// Blocking loopback sockets, all closed by `closeAll`.
    final class Loopback {
        typealias Pair = (client: Int32, server: Int32)
        private var fds: [Int32] = []

        func listen(on text: String) throws -> (fd: Int32, port: UInt16) {
            let address = SocketAddress(address: IPAddress(text)!, port: 0)
            let fd = try open(address.family)
            try Posix.bind(fd, address)
            try Posix.listen(fd, backlog: 16)
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            return (fd, SocketAddress(storage: storage)!.port)
        }

        /// A connection from `source` (any port) to `destination`:`port`, accepted by `listener`.
        func connect(_ source: String, to destination: String, _ port: UInt16, _ listener: Int32) throws -> Pair {
            let target = SocketAddress(address: IPAddress(destination)!, port: port)
            let client = try open(target.family)
            try Posix.bind(client, SocketAddress(address: IPAddress(source)!, port: 0))
            _ = try Posix.connect(client, target)  // Blocking: done once connected.
            let server = try Posix.must { accept(listener, nil, nil) }
            fds.append(server)
            return (client, server)
        }

        func closeAll() { fds.forEach { Glibc.close($0) }; fds = [] }

        private func open(_ family: Int32) throws -> Int32 {
            let fd = try Posix.must { socket(family, Int32(SOCK_STREAM.rawValue), 0) }
            fds.append(fd)
            return fd
        }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    final class Job: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Runs `body` on a new thread that first moves into a fresh network namespace (unshare(2),
    /// which Glibc's module hides: found with dlsym) and brings its `lo` up: 127.0.0.0/8 and ::1.
    static func inPrivateNetwork<T>(_ body: @escaping (Loopback) throws -> T) throws -> T {
        try #require(geteuid() == 0, "SOCK_DESTROY needs CAP_NET_ADMIN, unshare(2) CAP_SYS_ADMIN: run as root")
        var outcome: Result<T, any Error>?
        let job = Job {
            let net = Loopback()
            defer { net.closeAll() }
            outcome = Result { () throws -> T in
                typealias Unshare = @convention(c) (Int32) -> Int32
                guard let unshare = dlsym(nil, "unshare") else { throw Failure(description: "no unshare(2)") }
                _ = try Posix.must { unsafeBitCast(unshare, to: Unshare.self)(0x4000_0000) }  // CLONE_NEWNET
                let fd = try Posix.must { socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0) }
                defer { Glibc.close(fd) }
                var request = ifreq()
                withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { $0.copyBytes(from: "lo".utf8) }
                _ = try Posix.must { ioctl(fd, UInt(SIOCGIFFLAGS), &request) }
                request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
                _ = try Posix.must { ioctl(fd, UInt(SIOCSIFFLAGS), &request) }
                return try body(net)
            }
        }
        var thread = pthread_t()
        let started = pthread_create(
            &thread, nil,
            { context in
                Unmanaged<Job>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, Unmanaged.passRetained(job).toOpaque())
        guard started == 0 else { throw Failure(description: "pthread_create: \(started)") }
        pthread_join(thread, nil)
        return try #require(outcome).get()
    }

    /// Adds an IPv6 address to `lo`: SIOCSIFADDR with a `struct in6_ifreq` (address, prefix
    /// length, interface index). Loopback skips duplicate address detection, but the address
    /// stays tentative (EADDRNOTAVAIL) until the kernel's DAD work has run: wait for a bind.
    static func addAddress(_ text: String) throws {
        guard case .v6(let value) = IPAddress(text)! else { throw Failure(description: "not IPv6: \(text)") }
        var request = withUnsafeBytes(of: value.bigEndian) { Array($0) }
        request += withUnsafeBytes(of: UInt32(128)) { Array($0) }
        request += withUnsafeBytes(of: Int32(if_nametoindex("lo"))) { Array($0) }
        let fd = try Posix.must { socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0) }
        defer { Glibc.close(fd) }
        _ = try Posix.must { request.withUnsafeMutableBytes { ioctl(fd, UInt(SIOCSIFADDR), $0.baseAddress!) } }
        for _ in 0..<200 {
            if (try? Posix.bind(fd, SocketAddress(address: .v6(value), port: 0))) != nil { return }
            usleep(10_000)
        }
        throw Failure(description: "\(text) never became usable")
    }

    /// Whether a byte crosses `pair` each way.
    static func carries(_ pair: Loopback.Pair) -> Bool {
        func send(_ from: Int32, _ to: Int32) -> Bool {
            var byte: UInt8 = 42
            guard Glibc.send(from, &byte, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
            byte = 0
            Posix.waitReadable([to], timeout: .seconds(2))
            return recv(to, &byte, 1, Int32(MSG_DONTWAIT)) == 1 && byte == 42
        }
        return send(pair.client, pair.server) && send(pair.server, pair.client)
    }

    /// How reading `fd` ends within 2 s: an errno, or 0 at end of input; nil if it is still open.
    static func ending(_ fd: Int32) -> Int32? {
        Posix.waitReadable([fd], timeout: .seconds(2))
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        if count < 0 { return errno == EAGAIN ? nil : errno }
        return count == 0 ? 0 : nil
    }

    /// Waits (at most 2 s) for `fd` to reach TCP_CLOSE (7), per TCP_INFO.
    static func waitUntilClosed(_ fd: Int32) throws {
        for _ in 0..<200 {
            var info = tcp_info()
            var length = socklen_t(MemoryLayout<tcp_info>.size)
            if getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0, info.tcpi_state == 7 { return }
            usleep(10_000)
        }
        throw Failure(description: "the TIME_WAIT setup: the server side never left FIN_WAIT2")
    }
}
