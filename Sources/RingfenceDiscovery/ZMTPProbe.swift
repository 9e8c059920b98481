import RingfenceSockets
import RingfenceZMTP
import SystemPackage

/// Tells whether a TCP listener of this host is a ZMTP socket, and which, without disturbing it
/// (docs/discovery.md §2).
///
/// A ZMTP server speaks first: libzmq sends its signature as soon as it accepts. So the probe
/// connects, reads, and writes nothing until the first ten bytes show a ZMTP signature; a
/// listener that sends nothing before the deadline (TCPStore, gloo: their clients speak first)
/// or sends something else is closed without ever being sent a byte. A ZMTP server gets our
/// greeting, answers with the rest of its own and its READY, whose `Socket-Type` is the answer;
/// the probe closes before sending its READY or any subscription, so libzmq never makes it a
/// pipe: the writer's XPUB_VERBOSE count of readers never moves.
///
/// Blocking: run it off the daemon's queue.
public enum ZMTPProbe {
    /// The ZMTP signature's length: byte 0 `FF`, byte 9 with its low bit set (RFC 23).
    static let signatureBytes = 10
    /// The greeting's length: the first part of `Handshake.opening` (the READY follows it).
    static let greetingBytes = 64

    /// Connects to `address`, classifies what answers, and closes.
    /// - Parameters:
    ///   - deadline: how long to wait for the first byte, and again for the rest of the
    ///     handshake once the signature showed ZMTP.
    ///   - queued: asked, with the probe's own port, when the deadline passes without a byte:
    ///     whether the connection still waits in the listener's accept queue. Silence means
    ///     something only once the application has accepted: libzmq greets in the same step as
    ///     its accept, but a process that is stopped or starved of CPU (a container throttled at
    ///     its CPU limit stalls for the rest of a 100 ms period) accepts late. While it is queued
    ///     the probe waits on, up to `acceptWait` in all, and gives one more `deadline` after the
    ///     accept (docs/discovery.md §2). Nil: silence at the deadline is `silent`.
    public static func classify(
        _ address: SocketAddress, deadline: Duration = .milliseconds(100),
        queued: ((_ probePort: UInt16) -> Bool)? = nil, acceptWait: Duration = .seconds(1)
    ) -> ProbeVerdict {
        let socket: Socket
        do {
            socket = try Socket.tcp(family: address.family)
        } catch {
            return ProbeVerdict(.unreachable, detail: "socket: \(error)")
        }
        let verdict = exchange(socket.fd, address, deadline: deadline, queued: queued, acceptWait: acceptWait)
        socket.close()
        return verdict
    }

    private static func exchange(
        _ fd: Int32, _ address: SocketAddress, deadline: Duration,
        queued: ((UInt16) -> Bool)?, acceptWait: Duration
    ) -> ProbeVerdict {
        let started = ContinuousClock.now
        do {
            if case .wouldBlock = try Posix.connect(fd, address) {
                guard Posix.waitWritable(fd, timeout: deadline) else {
                    return ProbeVerdict(.unreachable, detail: "connect timed out")
                }
                if let error = Posix.pendingError(fd) { return ProbeVerdict(.unreachable, detail: "connect: \(error)") }
            }
        } catch {
            return ProbeVerdict(.unreachable, detail: "connect: \(error)")
        }
        var handshake = Handshake(localType: .xsub)
        var received = 0
        var greeted = false
        var buffer = [UInt8](repeating: 0, count: 512)
        var until = ContinuousClock.now + deadline
        var wait = AcceptWait(queued: queued, port: Posix.localAddress(fd)?.port, limit: started + acceptWait)
        while true {
            let left = until - ContinuousClock.now
            guard left > .zero else {
                if received == 0 {
                    if let next = wait.extended(by: deadline) {
                        until = next
                        continue
                    }
                    return ProbeVerdict(.silent, detail: "no byte in \(deadline)\(wait.note(since: started))")
                }
                return ProbeVerdict(.zmtp, detail: "handshake not finished in \(deadline)")
            }
            Posix.waitReadable([fd], timeout: left)
            let count: Int
            do {
                let result = try buffer.withUnsafeMutableBytes { bytes throws(Errno) in try Posix.read(fd, into: bytes) }
                guard case .done(let read) = result else { continue }
                count = read
            } catch {
                return received == 0
                    ? ProbeVerdict(.closed, detail: "\(error)") : ProbeVerdict(.otherProtocol, detail: "\(error)")
            }
            if count == 0 {
                if received == 0 { return ProbeVerdict(.closed, detail: "closed without a byte") }
                return greeted
                    ? ProbeVerdict(.zmtp, detail: "closed before its READY")
                    : ProbeVerdict(.otherProtocol, detail: "closed after \(received) bytes")
            }
            received += count
            let fed: Result<Int, ZMTPError> = buffer.withUnsafeBytes { bytes in
                Result { () throws(ZMTPError) in try handshake.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) }
            }
            if case .failure(let error) = fed {
                if case .socketTypeMismatch(_, let peer) = error {
                    return ProbeVerdict(.zmtp, socketType: peer.rawValue)
                }
                return greeted
                    ? ProbeVerdict(.zmtp, detail: "\(error)") : ProbeVerdict(.otherProtocol, detail: "\(error)")
            }
            if handshake.state == .done {
                return ProbeVerdict(.zmtp, socketType: handshake.peerType?.rawValue)
            }
            if !greeted && received >= signatureBytes {
                // The signature is ZMTP's: now, and only now, we speak — our greeting, not our READY.
                greeted = true
                let sent = Array(handshake.opening.prefix(greetingBytes))
                do {
                    _ = try sent.withUnsafeBytes { bytes throws(Errno) in try Posix.write(fd, from: bytes) }
                } catch {
                    return ProbeVerdict(.zmtp, detail: "greeting not sent: \(error)")
                }
                until = ContinuousClock.now + deadline
            }
        }
    }
}

/// Whether a silent listener has accepted the probe yet, and so whether its silence counts.
private struct AcceptWait {
    let queued: ((UInt16) -> Bool)?
    let port: UInt16?
    let limit: ContinuousClock.Instant
    /// The probe's connection was seen in the accept queue at an earlier deadline.
    private(set) var wasQueued = false
    /// One more deadline was given after the accept was seen.
    private(set) var graceGiven = false

    /// When to look again, or nil when the silence is the answer: the connection was accepted
    /// (and, if it had been queued, one more `deadline` has passed since), the time is up, or
    /// there is no way to tell.
    mutating func extended(by deadline: Duration) -> ContinuousClock.Instant? {
        let now = ContinuousClock.now
        guard let queued, let port, now < limit else { return nil }
        if queued(port) {
            wasQueued = true
            return min(now + deadline, limit)
        }
        guard wasQueued, !graceGiven else { return nil }
        graceGiven = true
        return now + deadline
    }

    /// For the verdict's detail: how long the listener left the probe in its accept queue.
    func note(since started: ContinuousClock.Instant) -> String {
        guard wasQueued else { return "" }
        let waited = "\((ContinuousClock.now - started).milliseconds) ms"
        return graceGiven ? " after it accepted (\(waited) in all)" : " (\(waited) in all, never accepted)"
    }
}
