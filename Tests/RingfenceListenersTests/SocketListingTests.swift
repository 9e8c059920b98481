import RingfenceAddresses
import Testing

@testable import RingfenceListeners
@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// Real listeners in the test process's namespace, found by port and inode (other processes on
/// the machine listen too: nothing here assumes the listing holds only ours).
@Suite struct SocketListingTests {
    @Test(arguments: ["127.0.0.1", "::1"])
    func aListenerIsListedWithItsOwnerUntilClosed(address: String) throws {
        let socket = try TestSocket(address)
        try socket.listen()
        let inode = socket.inode
        defer { socket.close() }
        let listed = try SocketListing.listeners().filter { $0.port == socket.port }
        #expect(listed == [ListeningSocket(address: IPAddress(address)!, port: socket.port, inode: inode, uid: geteuid())])

        let owners = ProcessTable.owners(of: [inode])
        let ownCommandLine = ProcessTable.commandLine(try Posix.readFile("/proc/self/cmdline"))
        #expect(owners[inode] == SocketOwner(pid: getpid(), commandLine: ownCommandLine))
        #expect(!ownCommandLine.isEmpty && !ownCommandLine.hasSuffix(" "))
        // A thread id reports its process (/proc/thread-self links to PID/task/TID).
        let thread = try #require(Posix.readLink("/proc/thread-self")?.split(separator: "/").last.flatMap { Int32($0) })
        #expect(ProcessTable.owner(pid: thread)?.pid == getpid())

        socket.close()
        // Gone at once, unless another thread's /proc scan holds the file for a moment (a readlink
        // of /proc/PID/fd/N takes a reference): then within a few milliseconds.
        var gone = false
        for _ in 0..<100 where !gone {
            gone = try SocketListing.listeners().allSatisfy { $0.inode != inode }
            if !gone { usleep(1000) }
        }
        #expect(gone)
    }

    /// The watch's polls list both families in one (older, TCPDIAG_GETSOCK) dump: it must give
    /// what the two per-family dumps give, under each socket's family.
    @Test func oneDumpOfBothFamiliesMatchesTwo() throws {
        let v4 = try TestSocket("127.0.0.1")
        let v6 = try TestSocket("::1")
        defer { v4.close(); v6.close() }
        try v4.listen()
        try v6.listen()
        let both = try SocketListing.listenersByFamily()
        #expect(both[AF_INET]?.contains { $0.inode == v4.inode } == true)
        #expect(both[AF_INET6]?.contains { $0.inode == v6.inode } == true)
        #expect(both[AF_INET]?.contains { $0.inode == v6.inode } == false)
        let mine: Set<UInt64> = [v4.inode, v6.inode]
        let separately = try SocketListing.listeners().filter { mine.contains($0.inode) }
        #expect(Set(separately) == Set(both.values.joined().filter { mine.contains($0.inode) }))
    }

    @Test func establishedFindsAnAcceptedConnection() throws {
        let (listener, client) = try TestSocket.connectedPair()
        defer { listener.close(); client.close() }
        let accepted = try Posix.must { accept(listener.fd, nil, nil) }
        defer { close(accepted) }
        var status = stat()
        fstat(accepted, &status)
        let found = try SocketListing.established(localPort: listener.port)
        #expect(found == [EstablishedSocket(
            local: listener.address, localPort: listener.port, remote: client.address, remotePort: client.port,
            inode: UInt64(status.st_ino))])
        #expect(try SocketListing.established(localPort: client.port).map(\.remotePort) == [listener.port])
    }

    /// The discovery probe's question: a connection the kernel completed but the application has
    /// not accepted yet is listed without an inode.
    @Test func aConnectionAwaitsAcceptUntilTheApplicationAcceptsIt() throws {
        let (listener, client) = try TestSocket.connectedPair()
        defer { listener.close(); client.close() }
        #expect(try SocketListing.awaitsAccept(listenerPort: listener.port, clientPort: client.port))
        let accepted = try Posix.must { accept(listener.fd, nil, nil) }
        defer { close(accepted) }
        #expect(try !SocketListing.awaitsAccept(listenerPort: listener.port, clientPort: client.port))
        #expect(try !SocketListing.awaitsAccept(listenerPort: listener.port, clientPort: listener.port))
    }

    @Test func noOwnerForAnUnknownInodeOrAMissingProcess() {
        #expect(ProcessTable.owners(of: [UInt64.max]).isEmpty)
        #expect(ProcessTable.owner(pid: -1) == nil)
        #expect(ProcessTable.owner(pid: Int32.max) == nil)
    }

    @Test func procTextIsParsed() {
        #expect(ProcessTable.commandLine(Array("python3\0-m\0vllm\0".utf8)) == "python3 -m vllm")
        #expect(ProcessTable.commandLine([]) == "")
        #expect(ProcessTable.threadGroup(status: Array("Name:\tx\nTgid:\t42\nPid:\t43\n".utf8)) == 42)
        #expect(ProcessTable.threadGroup(status: Array("garbage".utf8)) == nil)
        #expect(ProcessTable.socketInode("socket:[12345]") == 12345)
        #expect(ProcessTable.socketInode("pipe:[1]") == nil)
        #expect(ProcessTable.socketInode("socket:[x]") == nil)
        #expect(ProcessTable.socketInode(nil) == nil)
    }
}
