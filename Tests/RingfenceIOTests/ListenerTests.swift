import RingfenceAddresses
import RingfenceSockets
import SystemPackage
import Testing

@testable import RingfenceIO

#if canImport(Glibc)
import Glibc
#endif

/// Listening ports: no other socket can bind one this process listens on, but a second
/// listener in this process (a guard restarted by a reload) shares it.
@Suite(.serialized) struct ListenerTests {
    /// A plain bind of `address` from a fresh socket, as another process would try it (with
    /// SO_REUSEADDR, which a second proxyd sets too): nil if it bound, else the error.
    static func bindElsewhere(_ address: SocketAddress) -> Errno? {
        do throws(Errno) {
            let socket = try Socket.tcp(family: address.family)
            do throws(Errno) {
                try Posix.setOption(socket.fd, SOL_SOCKET, SO_REUSEADDR, 1)
                try Posix.bind(socket.fd, address)
                try Posix.listen(socket.fd, backlog: 1)
            } catch {
                socket.close()
                return error
            }
            socket.close()
            return nil
        } catch {
            return error
        }
    }

    /// A listener on a free loopback port.
    static func listen(loop: EventLoop) throws -> Listener {
        for _ in 0..<20 {
            let address = SocketAddress(address: IPAddress("127.0.0.1")!, port: UInt16.random(in: 40000...60000))
            if let listener = try? Listener(address: address, loop: loop, onAccept: { socket, _ in socket.close() }) {
                return listener
            }
        }
        throw Errno.addressInUse
    }

    @Test func aPortThisProcessListensOnCannotBeBoundByAnotherSocket() throws {
        let loop = EventLoop(index: 0)
        let listener = try Self.listen(loop: loop)
        #expect(Self.bindElsewhere(listener.address) == .addressInUse)
        listener.close()
    }

    @Test func aSecondListenerOnTheSameAddressSharesTheSocketAndTheLastCloseFreesThePort() async throws {
        let loop = EventLoop(index: 0)
        let first = try Self.listen(loop: loop)
        let accepted = ReceivedBytes()
        let second = try Listener(
            address: first.address, loop: loop, onAccept: { socket, _ in accepted.append([1]); socket.close() })
        first.close()
        // The first's descriptor is closed on the loop; the port stays the second's, and it accepts.
        loop.queue.sync {}
        try await Task.sleep(for: .milliseconds(50))
        #expect(Self.bindElsewhere(first.address) == .addressInUse)
        let client = try Socket.make(family: AF_INET, type: Int32(SOCK_STREAM.rawValue))
        let connected = Result { () throws(Errno) in try Posix.connect(client.fd, first.address) }
        client.close()
        #expect(throws: Never.self) { try connected.get() }
        try await waitUntil { accepted.bytes.count == 1 }
        second.close()
        var freed = false
        for _ in 0..<100 where !freed {
            try await Task.sleep(for: .milliseconds(20))
            freed = Self.bindElsewhere(first.address) == nil
        }
        #expect(freed)
    }

    /// A discovered XPUB's broker listens on a port the kernel picks: IPv4 and IPv6 get the same
    /// one, a second such guard gets another (never a duplicate of the first's socket), and the
    /// port is registered under its real number, so closing frees it.
    @Test func portZeroPicksOnePortForBothFamiliesAndANewOneEachTime() throws {
        let loop = EventLoop(index: 0)
        let first = try Listener.anyAddress(port: 0, loop: loop, onError: { _ in }, onAccept: { socket, _ in socket.close() })
        let second = try Listener.anyAddress(port: 0, loop: loop, onError: { _ in }, onAccept: { socket, _ in socket.close() })
        let firstPorts = Set(first.listeners.map(\.address.port))
        let secondPorts = Set(second.listeners.map(\.address.port))
        #expect(firstPorts.count == 1 && !firstPorts.contains(0))
        #expect(secondPorts.count == 1 && !secondPorts.contains(0))
        #expect(firstPorts != secondPorts)
        let port = try #require(firstPorts.first)
        #expect(Self.bindElsewhere(SocketAddress(address: .v4(0), port: port)) == .addressInUse)
        for listener in first.listeners + second.listeners { listener.close() }
    }
}
