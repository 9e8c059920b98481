import Testing

@testable import RingfenceSockets

#if canImport(Glibc)
import Glibc
#endif

/// The owning socket: closed exactly once, handed over explicitly, and a lost one caught.
@Suite struct SocketTests {
    /// Whether the other end of a socket pair has been closed: it reads end of input.
    static func peerClosed(_ remote: Int32) -> Bool {
        var byte: UInt8 = 0
        return Glibc.read(remote, &byte, 1) == 0
    }

    @Test func closeClosesTheDescriptor() {
        let (local, remote) = socketPair()
        defer { Glibc.close(remote) }
        let socket = Socket(adopting: local)
        #expect(!Self.peerClosed(remote))
        socket.close()
        #expect(Self.peerClosed(remote))
    }

    @Test func releaseHandsTheOpenDescriptorOver() {
        let (local, remote) = socketPair()
        defer { Glibc.close(remote) }
        let fd = Socket(adopting: local).release()
        #expect(fd == local)
        #expect(!Self.peerClosed(remote))
        Glibc.close(fd)
        #expect(Self.peerClosed(remote))
    }

    @Test func aDuplicateIsTheSameSocketUnderItsOwnNumber() throws {
        let (local, remote) = socketPair()
        defer { Glibc.close(remote) }
        let original = Socket(adopting: local)
        let copy = try Posix.duplicate(original.fd)
        #expect(copy.fd != original.fd)
        original.close()
        #expect(!Self.peerClosed(remote))
        copy.close()
        #expect(Self.peerClosed(remote))
    }

    #if DEBUG
    @Test func aSocketDroppedWithoutCloseIsCaughtInDebugBuilds() async {
        await #expect(processExitsWith: .failure) {
            _ = try? Socket.tcp(family: AF_INET)
        }
    }
    #endif
}
