import RingfenceAddresses
import SystemPackage
import Testing

@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// A connected, non-blocking pair of Unix stream sockets.
func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    let result = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds)
    precondition(result == 0)
    return (fds[0], fds[1])
}

@Suite struct PosixTests {
    @Test func pipeAndSpliceMoveBytesBetweenSocketsAndAPipe() throws {
        let (a, b) = socketPair()
        defer {
            Glibc.close(a)
            Glibc.close(b)
        }
        let pipe = try Posix.pipe(capacity: 1 << 20)
        defer {
            try? pipe.read.close()
            try? pipe.write.close()
        }
        #expect(pipe.capacity >= 1 << 16)
        // A pipe is empty: reading from it would block.
        if case .done = try Posix.splice(from: pipe.read.rawValue, to: b, count: 10) { Issue.record("spliced from an empty pipe") }
        let payload = Array("ringfence".utf8)
        _ = payload.withUnsafeBytes { Glibc.write(a, $0.baseAddress, $0.count) }
        guard case .done(let moved) = try Posix.splice(from: b, to: pipe.write.rawValue, count: 64) else {
            Issue.record("nothing spliced")
            return
        }
        #expect(moved == payload.count)
    }

    @Test func aFIFOWithoutAWriterReadsAsEmptyWhenNonBlocking() throws {
        let path = "/tmp/ringfence-posix-fifo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        #expect(try Posix.readFile(path, nonBlocking: true) == [])
    }

    @Test func socketAddressesConvertBothWays() {
        let v4 = SocketAddress(address: IPAddress("10.1.2.3")!, port: 29500)
        let v6 = SocketAddress(address: IPAddress("fd77::1")!, port: 5557)
        #expect(v4.description == "10.1.2.3:29500")
        #expect(v6.description == "[fd77::1]:5557")
        for address in [v4, v6] {
            let back = address.withSockAddr { pointer, length -> SocketAddress? in
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: Int(length))) }
                return SocketAddress(storage: storage)
            }
            #expect(back == address)
        }
    }
}
