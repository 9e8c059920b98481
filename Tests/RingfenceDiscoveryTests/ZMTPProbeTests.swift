import CZeroMQ
import RingfenceAddresses
import RingfenceListeners
import RingfenceSockets
import RingfenceTestSupport
import RingfenceZMTP
import Testing

@testable import RingfenceDiscovery

#if canImport(Glibc)
import Glibc
#endif

/// The probe against real libzmq 4.3.4 sockets and plain listeners over loopback: it names what
/// answers and disturbs nothing — an XPUB with XPUB_VERBOSE never sees it as a subscriber, and a
/// silent listener is never sent a byte.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ZMTPProbeTests {
    private func loopback(_ port: UInt16) -> SocketAddress {
        SocketAddress(address: IPAddress("127.0.0.1")!, port: port)
    }

    @Test func namesAnXPUBAndIsNeverCountedAsAReader() throws {
        let xpub = try LibzmqSocket(type: ZMQ_XPUB)
        try xpub.set(ZMQ_XPUB_VERBOSE, 1)
        let port = try xpub.bindLoopback()
        for _ in 0..<3 {
            let verdict = ZMTPProbe.classify(loopback(port), deadline: .milliseconds(500))
            #expect(verdict.isXPUB, "\(verdict) \(verdict.detail ?? "")")
        }
        // A real subscriber afterwards: its subscription is the first and only message the XPUB gets.
        let sub = try LibzmqSocket(type: ZMQ_SUB)
        try sub.set(ZMQ_SUBSCRIBE, bytes: [])
        try sub.connectLoopback(port: port)
        let first = try xpub.receive()
        #expect(first.body == [1])
        try xpub.set(ZMQ_RCVTIMEO, 300)
        #expect(throws: LibzmqFailure.self) { try xpub.receive() }
    }

    @Test func namesOtherZMTPSocketTypes() throws {
        let router = try LibzmqSocket(type: ZMQ_ROUTER)
        let port = try router.bindLoopback()
        let verdict = ZMTPProbe.classify(loopback(port), deadline: .milliseconds(500))
        #expect(verdict.kind == .zmtp)
        #expect(verdict.socketType == "ROUTER")
        #expect(!verdict.isXPUB)
    }

    @Test func aSilentListenerIsNeverSentAByte() throws {
        let (listener, port) = try PlainListener.open()
        defer { close(listener) }
        let began = ContinuousClock.now
        let verdict = ZMTPProbe.classify(loopback(port), deadline: .milliseconds(80))
        #expect(verdict.kind == .silent)
        #expect(ContinuousClock.now - began >= .milliseconds(80))
        let accepted = accept(listener, nil, nil)
        try #require(accepted >= 0)
        defer { close(accepted) }
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(read(accepted, &buffer, buffer.count) == 0, "the probe closed without writing")
    }

    /// What the daemon asks: whether the probe's connection still waits in the accept queue.
    private func queued(on port: UInt16) -> (UInt16) -> Bool {
        { (try? SocketListing.awaitsAccept(listenerPort: port, clientPort: $0)) ?? false }
    }

    /// A ZMTP server that accepts 300 ms late, as a process stopped or throttled at its CPU
    /// limit does, then greets at once: named while the probe sees its connection still queued;
    /// without that question, its silence at the deadline is taken for an answer.
    @Test(arguments: [true, false])
    func aZMTPServerThatAcceptsLateIsNamedWhileItsAcceptQueueIsWatched(watched: Bool) throws {
        let (listener, port) = try PlainListener.open()
        defer { close(listener) }
        let greeting = Handshake(localType: .xpub).opening
        let server = BannerServer(listener, banner: greeting, acceptAfter: .milliseconds(300))
        let began = ContinuousClock.now
        let verdict = ZMTPProbe.classify(
            loopback(port), deadline: .milliseconds(80), queued: watched ? queued(on: port) : nil)
        let took = ContinuousClock.now - began
        if watched {
            #expect(verdict.isXPUB, "\(verdict) \(verdict.detail ?? "")")
            #expect(took >= .milliseconds(300) && took < .milliseconds(900), "\(took)")
            // It sends greeting and READY at once, so the probe is done before it would greet.
            #expect(server.wait() <= ZMTPProbe.greetingBytes, "at most our greeting, never our READY")
        } else {
            #expect(verdict.kind == .silent)
            #expect(took < .milliseconds(250), "\(took)")
            #expect(server.wait() == 0)
        }
    }

    /// A listener that accepts at once and stays silent (TCPStore, gloo) is `silent` after one
    /// deadline even while the accept queue is watched: only a queued connection is waited for.
    @Test func aListenerThatAcceptsAndStaysSilentIsSilentAfterOneDeadline() throws {
        let (listener, port) = try PlainListener.open()
        defer { close(listener) }
        let server = BannerServer(listener, banner: [])
        let began = ContinuousClock.now
        let verdict = ZMTPProbe.classify(loopback(port), deadline: .milliseconds(80), queued: queued(on: port))
        #expect(verdict.kind == .silent)
        #expect(ContinuousClock.now - began < .milliseconds(250))
        #expect(server.wait() == 0, "the probe wrote nothing")
    }

    /// A listener that never accepts is given up on at `acceptWait`, and says so.
    @Test func aListenerThatNeverAcceptsIsSilentAtTheAcceptWait() throws {
        let (listener, port) = try PlainListener.open()
        defer { close(listener) }
        let began = ContinuousClock.now
        let verdict = ZMTPProbe.classify(
            loopback(port), deadline: .milliseconds(80), queued: queued(on: port), acceptWait: .milliseconds(300))
        let took = ContinuousClock.now - began
        #expect(verdict.kind == .silent)
        #expect(verdict.detail?.contains("never accepted") == true, "\(verdict.detail ?? "")")
        #expect(took >= .milliseconds(300) && took < .milliseconds(700), "\(took)")
    }

    @Test func aListenerThatSpeaksSomethingElseIsNotZMTPAndIsSentNothing() throws {
        let (listener, port) = try PlainListener.open()
        defer { close(listener) }
        let server = BannerServer(listener, banner: Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
        let verdict = ZMTPProbe.classify(loopback(port), deadline: .milliseconds(500))
        #expect(verdict.kind == .otherProtocol)
        #expect(server.wait() == 0, "the probe wrote nothing")
    }

    @Test func aClosedPortIsUnreachable() throws {
        let (listener, port) = try PlainListener.open()
        close(listener)
        #expect(ZMTPProbe.classify(loopback(port), deadline: .milliseconds(100)).kind == .unreachable)
    }
}
