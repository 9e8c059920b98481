import CZeroMQ
import RingfenceTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What libzmq made of one stream, observed from outside: its monitor's events, what its socket
/// delivered, and whether it closed the TCP connection.
struct LibzmqVerdict: Sendable {
    var decision: StreamDecision
    /// What showed the refusal: a monitor event (with its protocol error code) or the close.
    var evidence: String = ""
    /// XPUB: the topics subscribed at the end (subscribe and cancel applied in order).
    var subscriptions: Set<[UInt8]> = []
    /// XPUB: messages from the peer that are not subscriptions; SUB: every message.
    var messages: [[[UInt8]]] = []
}

/// Runs a batch of streams against real libzmq 4.3.4 sockets at once, one socket per stream in one
/// context, over loopback TCP on ports the kernel picks; every wait is bounded (docs/reliability.md,
/// "Differential test").
///
/// Subscriber side: an XPUB with `ZMQ_XPUB_VERBOSE` binds, the test connects a plain TCP socket and
/// writes the stream. Engine side: the test listens, a SUB (subscribed to everything, never
/// reconnecting) connects, and the test writes the stream on the accepted connection.
///
/// A stream is settled once libzmq closed it (a `HANDSHAKE_FAILED_*` or `DISCONNECTED` event, or
/// the TCP close) or delivered its sentinel; or, once `quiet` has passed since it was written,
/// when what libzmq shows is among the decisions `expected` allows (waiting is then all it does);
/// or at `deadline`. A pending decision is thus a quiet window, never a sleep before a refusal.
final class LibzmqPeer {
    private let context: UnsafeMutableRawPointer
    private var nextMonitor = 0
    let quiet: Duration
    let deadline: Duration

    init(quiet: Duration = .milliseconds(100), deadline: Duration = .seconds(10)) throws {
        guard let context = zmq_ctx_new() else { throw LibzmqFailure("zmq_ctx_new") }
        self.context = context
        self.quiet = quiet
        self.deadline = deadline
    }

    deinit { zmq_ctx_term(context) }

    /// One stream in flight.
    private final class Probe {
        let stream: GeneratedStream
        let expected: Set<StreamDecision>
        /// Whether libzmq 4.3.4 answers the stream's greeting with its READY: a whole ZMTP 3
        /// greeting (byte 0 `FF`, byte 9 odd, major 2 or more: libzmq takes 2 for 3) naming NULL.
        /// Only how long to wait for that READY depends on it.
        var expectsReady: Bool {
            let bytes = stream.bytes
            return stream.greetingCount == 64 && bytes[0] == 0xFF && bytes[9] & 1 == 1 && bytes[10] >= 2
                && bytes[12..<32].elementsEqual(Array("NULL".utf8) + [UInt8](repeating: 0, count: 16))
        }
        var socket: UnsafeMutableRawPointer?
        var monitor: UnsafeMutableRawPointer?
        var raw: Int32 = -1
        var handshakeSucceeded = false
        var closedBy: String?
        var sentinel = false
        var verdict = LibzmqVerdict(decision: .handshaking)
        var frames: [[UInt8]] = []
        /// The first bytes libzmq sent: its greeting, then its READY.
        var received: [UInt8] = []

        init(stream: GeneratedStream, expected: Set<StreamDecision>) {
            self.stream = stream
            self.expected = expected
        }

        var decision: StreamDecision {
            if closedBy != nil { return .refused }
            if sentinel { return .accepted }
            return handshakeSucceeded ? .open : .handshaking
        }

        /// libzmq's greeting and READY have arrived (its READY is a short command frame).
        var hasReady: Bool {
            received.count >= 66 && received.count >= 66 + Int(received[65])
        }
    }

    /// Feeds each stream to its own libzmq socket and returns libzmq's verdicts, in order.
    ///
    /// The greeting goes first; the rest once libzmq's greeting and READY have come (or it closed,
    /// or, for a greeting it does not answer with READY, after `quiet`).
    func run(_ batch: [(stream: GeneratedStream, expected: Set<StreamDecision>)]) throws -> [LibzmqVerdict] {
        let probes = batch.map { Probe(stream: $0.stream, expected: $0.expected) }
        defer {
            for probe in probes {
                if let socket = probe.socket { zmq_socket_monitor(socket, nil, 0) }
                if let monitor = probe.monitor { zmq_close(monitor) }
                if let socket = probe.socket { zmq_close(socket) }
                if probe.raw >= 0 { close(probe.raw) }
            }
        }
        for probe in probes { try open(probe) }
        for probe in probes { write(probe.stream.bytes[..<probe.stream.greetingCount], to: probe.raw) }
        try pump(probes) { probe, elapsed in
            probe.hasReady || probe.closedBy != nil || elapsed >= deadline || (!probe.expectsReady && elapsed >= quiet)
        }
        for probe in probes where probe.closedBy == nil {
            write(probe.stream.bytes[probe.stream.greetingCount...], to: probe.raw)
        }
        try pump(probes) { probe, elapsed in
            let decision = probe.decision
            return decision == .refused || decision == .accepted || elapsed >= deadline
                || (elapsed >= quiet && probe.expected.contains(decision))
        }
        return probes.map { probe in
            var verdict = probe.verdict
            verdict.decision = probe.decision
            verdict.evidence = probe.closedBy ?? ""
            return verdict
        }
    }

    /// Polls the probes' monitors, sockets and connections until `isSettled` holds for each.
    private func pump(_ probes: [Probe], until isSettled: (Probe, Duration) -> Bool) throws {
        let start = ContinuousClock.now
        var open = probes
        while !open.isEmpty {
            var items: [zmq_pollitem_t] = []
            for probe in open {
                items.append(zmq_pollitem_t(socket: probe.monitor, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
                items.append(zmq_pollitem_t(socket: probe.socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
                items.append(zmq_pollitem_t(socket: nil, fd: probe.raw, events: Int16(ZMQ_POLLIN), revents: 0))
            }
            guard zmq_poll(&items, Int32(items.count), 10) >= 0 || zmq_errno() == EINTR else {
                throw LibzmqFailure("zmq_poll")
            }
            for probe in open {
                readEvents(probe)
                readMessages(probe)
                readRaw(probe)
            }
            let elapsed = ContinuousClock.now - start
            open.removeAll { isSettled($0, elapsed) }
        }
    }

    // MARK: - Setting up

    private func open(_ probe: Probe) throws {
        let isSubscriberSide = probe.stream.side == .subscriber
        guard let socket = zmq_socket(context, isSubscriberSide ? ZMQ_XPUB : ZMQ_SUB) else {
            throw LibzmqFailure("zmq_socket")
        }
        probe.socket = socket
        try set(socket, ZMQ_LINGER, 0)
        let endpoint = "inproc://differential-monitor-\(nextMonitor)"
        nextMonitor += 1
        guard zmq_socket_monitor(socket, endpoint, ZMQ_EVENT_ALL) == 0 else {
            throw LibzmqFailure("zmq_socket_monitor")
        }
        guard let monitor = zmq_socket(context, ZMQ_PAIR) else { throw LibzmqFailure("zmq_socket(PAIR)") }
        probe.monitor = monitor
        guard zmq_connect(monitor, endpoint) == 0 else { throw LibzmqFailure("zmq_connect(monitor)") }
        if isSubscriberSide {
            try set(socket, ZMQ_XPUB_VERBOSE, 1)
            guard zmq_bind(socket, "tcp://127.0.0.1:*") == 0 else { throw LibzmqFailure("zmq_bind") }
            probe.raw = try connectRaw(port: LibzmqSocket.boundPort(socket))
        } else {
            guard zmq_setsockopt(socket, ZMQ_SUBSCRIBE, nil, 0) == 0 else { throw LibzmqFailure("ZMQ_SUBSCRIBE") }
            try set(socket, ZMQ_RECONNECT_IVL, -1)
            let listener = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            setTimeouts(listener)
            let port = LoopbackClient.bind(listener)
            guard Glibc.listen(listener, 1) == 0 else { throw LibzmqFailure("listen") }
            guard zmq_connect(socket, "tcp://127.0.0.1:\(port)") == 0 else { throw LibzmqFailure("zmq_connect") }
            probe.raw = accept(listener, nil, nil)
            guard probe.raw >= 0 else { throw LibzmqFailure("accept (libzmq SUB never connected)") }
        }
        setTimeouts(probe.raw)
    }

    private func set(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw LibzmqFailure("zmq_setsockopt(\(option))")
        }
    }

    private func connectRaw(port: UInt16) throws -> Int32 {
        let fd = LoopbackClient.connect(to: port)
        guard fd >= 0 else { throw LibzmqFailure("connect") }
        return fd
    }

    /// Receive and send (and, on a listener, accept) time out after 10 s.
    private func setTimeouts(_ fd: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// Writes all of `bytes`; stops early if libzmq has closed (that shows as its refusal).
    private func write(_ bytes: ArraySlice<UInt8>, to fd: Int32) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { return }
            sent += count
        }
    }

    // MARK: - Observing

    private func readEvents(_ probe: Probe) {
        while true {
            var event = zmq_msg_t()
            zmq_msg_init(&event)
            defer { zmq_msg_close(&event) }
            guard zmq_msg_recv(&event, probe.monitor, ZMQ_DONTWAIT) >= 6 else { return }
            let data = UnsafeRawBufferPointer(start: zmq_msg_data(&event), count: 6)
            let code = Int32(data.loadUnaligned(as: UInt16.self))
            let value = data.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            var address = zmq_msg_t()
            zmq_msg_init(&address)
            _ = zmq_msg_recv(&address, probe.monitor, ZMQ_DONTWAIT)
            zmq_msg_close(&address)
            switch code {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: probe.handshakeSucceeded = true
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
                probe.closedBy = probe.closedBy ?? "HANDSHAKE_FAILED_PROTOCOL 0x\(String(value, radix: 16))"
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                probe.closedBy = probe.closedBy ?? "HANDSHAKE_FAILED_NO_DETAIL errno \(value)"
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: probe.closedBy = probe.closedBy ?? "HANDSHAKE_FAILED_AUTH \(value)"
            case ZMQ_EVENT_DISCONNECTED: probe.closedBy = probe.closedBy ?? "DISCONNECTED"
            default: break
            }
        }
    }

    private func readMessages(_ probe: Probe) {
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            let count = zmq_msg_recv(&message, probe.socket, ZMQ_DONTWAIT)
            guard count >= 0 else { return }
            probe.frames.append(Array(UnsafeRawBufferPointer(start: zmq_msg_data(&message), count: Int(count))))
            guard zmq_msg_more(&message) == 0 else { continue }
            let frames = probe.frames
            probe.frames = []
            if probe.stream.side == .subscriber, frames.count == 1, let first = frames[0].first, first <= 1 {
                let topic = Array(frames[0].dropFirst())
                if first == 1 {
                    probe.verdict.subscriptions.insert(topic)
                } else {
                    probe.verdict.subscriptions.remove(topic)
                }
                if first == 1, topic == GeneratedStream.sentinel, probe.stream.hasSentinel { probe.sentinel = true }
            } else {
                probe.verdict.messages.append(frames)
                if probe.stream.side == .engine, frames == [GeneratedStream.sentinel], probe.stream.hasSentinel {
                    probe.sentinel = true
                }
            }
        }
    }

    /// Drains what libzmq sends (its greeting, READY, subscriptions) and notices its close.
    private func readRaw(_ probe: Probe) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while probe.closedBy == nil {
            let count = buffer.withUnsafeMutableBytes { recv(probe.raw, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                if probe.received.count < 512 { probe.received += buffer[..<min(count, 512)] }
                continue
            }
            if count == 0 || errno == ECONNRESET { probe.closedBy = "TCP close" }
            return
        }
    }
}

