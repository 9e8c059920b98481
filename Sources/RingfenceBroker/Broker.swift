import Logging
import RingfenceAdmission
import RingfenceIO
import RingfenceStatus
import RingfenceZMTP

/// The state of one broker guard, all on one loop (a fan-out never crosses loops): its
/// subscribers, the topic counts that decide what goes upstream, the upstream link, and the
/// fan-out of each upstream message to the subscribers whose topics match it.
final class Broker: @unchecked Sendable {
    let loop: EventLoop
    private let guardName: String
    private let logger: Logger
    private let admission: Admission
    private(set) var limits: BrokerLimits
    private(set) var subscribers: [UInt64: SubscriberSession] = [:]
    private var counts = TopicCounts()
    let upstream: UpstreamLink
    /// Subscribers with writes queued in the current upstream batch, flushed at its end.
    private var pendingFlush: [SubscriberSession] = []
    /// `on_overflow = "block"`: how many subscribers (`isHoldingUpstream`) reached a high-water
    /// mark; the engine is not read until each is below its low-water mark, evicted, or gone.
    private var holders = 0
    /// When the engine was last held back (the current episode, while `holders` is above zero).
    private var heldSince: ContinuousClock.Instant?
    /// Hold episodes and their total time since the last `logHolds`.
    private var unloggedHolds = (count: 0, time: Duration.zero)
    /// The guard's totals, less what live subscribers have moved and what the upstream link
    /// counts itself (messages, connects): `snapshot` adds those.
    var counters = GuardCounters()

    init(loop: EventLoop, guardName: String, logger: Logger, admission: Admission, limits: BrokerLimits) {
        self.loop = loop
        self.guardName = guardName
        self.logger = logger
        self.admission = admission
        self.limits = limits
        upstream = UpstreamLink(loop: loop, logger: logger, guardName: guardName, limits: limits)
        upstream.subscriptions = { [unowned self] in counts.subscriptions }
        upstream.onMessage = { [unowned self] frames in publish(frames) }
        upstream.onOversized = { [unowned self] bytes in oversized(bytes) }
        upstream.onBatchEnd = { [unowned self] in flushPending() }
    }

    /// New limits for the guard: its upstream link and every subscriber take them at once. A
    /// subscriber already over a lowered high-water mark overflows at its next message.
    func update(limits next: BrokerLimits) {
        loop.preconditionInLoop()
        limits = next
        upstream.update(limits: next)
        for session in subscribers.values { session.update(limits: next) }
        // Marks or the action changed: only subscribers still full keep the engine held.
        for session in subscribers.values where session.isHoldingUpstream {
            if next.onOverflow != .block || !session.isFull { release(session) }
        }
    }

    /// Takes an admitted connection: greeting and READY go out at once; the subscriber counts
    /// only once its handshake is done and it subscribes.
    func add(_ session: SubscriberSession) {
        loop.preconditionInLoop()
        subscribers[session.id] = session
        session.connection.onRead = { [unowned self, unowned session] bytes in received(bytes, from: session) }
        session.connection.onEndOfInput = { [unowned self, unowned session] in
            remove(session, reason: "closed by the subscriber", level: .debug)
        }
        session.connection.onError = { [unowned self, unowned session] error in
            remove(session, reason: "socket error: \(error)", level: .info)
        }
        session.connection.onPartialFlush = { [unowned self, unowned session] in progressed(session) }
        session.connection.onDrained = { [unowned self, unowned session] in
            session.refill()
            progressed(session)
        }
        session.start()
    }

    private func received(_ bytes: UnsafeRawBufferPointer, from session: SubscriberSession) {
        var inputs: [SubscriberSession.Input] = []
        do throws(SubscriberViolation) {
            try session.receive(bytes, into: &inputs)
        } catch {
            apply(inputs, from: session)
            counters.violations += 1
            admission.strike(session.peer.address, reason: .protocolViolation)
            logger.warning(
                "subscriber closed: protocol violation",
                metadata: [
                    "guard": "\(guardName)", "peer": "\(session.peer.address)", "rule": "\(error.rule)",
                    "detail": "\(error.description)",
                ])
            return remove(session, reason: nil, error: error.errorReason)
        }
        apply(inputs, from: session)
    }

    private func apply(_ inputs: [SubscriberSession.Input], from session: SubscriberSession) {
        for input in inputs {
            switch input {
            case .ready:
                logger.debug("subscriber ready", metadata: ["guard": "\(guardName)", "peer": "\(session.peer.address)"])
            case .subscribe(let topic):
                counts.add(topic)
                upstream.send(.subscribe(topic))
                logger.info(
                    "subscribed",
                    metadata: [
                        "guard": "\(guardName)", "peer": "\(session.peer.address)", "topic": "\(Self.printable(topic))",
                        "upstream": upstream.isReady ? "connected" : "pending",
                    ])
            case .cancel(let topic):
                if counts.remove(topic) { upstream.send(.cancel(topic)) }
            }
        }
    }

    /// One upstream message to every active subscriber whose topics match it.
    private func publish(_ frames: [SharedBytes]) {
        let message = BrokerMessage(frames: frames)
        counters.bytesFromUpstream += UInt64(message.wireBytes)
        for session in subscribers.values where session.isActive && session.matches(message.topicFrame) {
            switch session.deliver(message) {
            case .queued:
                counters.deliveries += 1
                if !session.needsFlush {
                    session.needsFlush = true
                    pendingFlush.append(session)
                }
                if limits.onOverflow == .block, !session.isHoldingUpstream, session.isFull { hold(for: session) }
            case .overflow:
                overflow(session, bytes: message.wireBytes)
            }
        }
    }

    private func overflow(_ session: SubscriberSession, bytes: Int) {
        switch limits.onOverflow {
        case .block:
            // Past the write limit, which the hold leaves room for: the queue cannot take the
            // message and the subscriber cannot skip it.
            evict(session, rule: "write-limit", bytes: bytes)
        case .drop:
            counters.drops += 1
            let first = session.dropped == 0
            session.countDrop()
            if first {
                session.unloggedDrops = 0
                logger.warning(
                    "subscriber queue full: dropping messages",
                    metadata: [
                        "guard": "\(guardName)", "peer": "\(session.peer.address)",
                        "queued_messages": "\(session.queuedMessages)", "queued_bytes": "\(session.queuedBytes)",
                        "hwm_messages": "\(limits.hwmMessages)", "hwm_bytes": "\(limits.hwmBytes)",
                    ])
            }
        case .disconnect:
            evict(session, rule: "hwm", bytes: bytes)
        }
    }

    /// Closes a subscriber whose queue it cannot keep, loudly: `rule` says which limit
    /// (`hwm`: a high-water mark, with `disconnect`; `max_stall`: no message taken within it;
    /// `write-limit`: past the room `block` leaves).
    private func evict(_ session: SubscriberSession, rule: String, bytes: Int? = nil, now: ContinuousClock.Instant = .now) {
        counters.evictions += 1
        // One that held the engine back is banned at once (StrikeReason.stalledEngine).
        admission.strike(session.peer.address, reason: session.isHoldingUpstream ? .stalledEngine : .evicted)
        var metadata: Logger.Metadata = [
            "guard": "\(guardName)", "peer": "\(session.peer.address)", "rule": "\(rule)",
            "queued_messages": "\(session.queuedMessages)", "queued_bytes": "\(session.queuedBytes)",
            "hwm_messages": "\(limits.hwmMessages)", "hwm_bytes": "\(limits.hwmBytes)",
            "delivered": "\(session.delivered)",
        ]
        if let bytes { metadata["message_bytes"] = "\(bytes)" }
        if rule == "max_stall" {
            metadata["stalled_ms"] = "\(session.stalledFor(now: now).milliseconds)"
            metadata["max_stall"] = "\(limits.maxStall)"
            metadata["held_engine"] = "\(session.isHoldingUpstream)"
        }
        logger.warning(rule == "max_stall" ? "subscriber evicted: no progress" : "subscriber evicted: queue full", metadata: metadata)
        remove(session, reason: nil)
    }

    /// Holds the engine back for `session`, which reached a high-water mark.
    private func hold(for session: SubscriberSession) {
        session.isHoldingUpstream = true
        holders += 1
        guard heldSince == nil else { return }
        heldSince = .now
        upstream.hold(true)
        logger.debug(
            "engine held back: subscriber queue full",
            metadata: [
                "guard": "\(guardName)", "peer": "\(session.peer.address)",
                "queued_messages": "\(session.queuedMessages)", "queued_bytes": "\(session.queuedBytes)",
            ])
    }

    /// `session` no longer holds the engine back; the last to let go resumes it.
    private func release(_ session: SubscriberSession) {
        guard session.isHoldingUpstream else { return }
        session.isHoldingUpstream = false
        holders -= 1
        guard holders == 0, let since = heldSince else { return }
        heldSince = nil
        let held = ContinuousClock.now - since
        counters.holds += 1
        counters.heldNanoseconds += UInt64(max(0, held.nanoseconds))
        unloggedHolds.count += 1
        unloggedHolds.time += held
        upstream.hold(false)
    }

    /// Bytes left a subscriber's queue: a holder below its low-water mark lets the engine go.
    private func progressed(_ session: SubscriberSession) {
        if session.isHoldingUpstream, session.isBelowLowWater { release(session) }
    }

    /// A message over max_message_bytes was read past: every subscriber that might have wanted
    /// it loses it, and is treated as overflowing (evicted, or its drop counted).
    private func oversized(_ bytes: Int) {
        logger.error(
            "upstream message over max_message_bytes: not delivered",
            metadata: ["guard": "\(guardName)", "bytes": "\(bytes)", "max_message_bytes": "\(limits.maxMessageBytes)"])
        for session in subscribers.values where session.isActive && !session.topics.isEmpty {
            overflow(session, bytes: bytes)
        }
    }

    private func flushPending() {
        for session in pendingFlush {
            session.needsFlush = false
            if !session.isClosed { session.connection.flush() }
        }
        pendingFlush.removeAll(keepingCapacity: true)
    }

    /// Logs the hold episodes since the last call, in one line: a reader slower than the engine
    /// holds it back many times a second, which is the point of `block`, not news each time.
    func logHolds() {
        guard unloggedHolds.count > 0 else { return }
        logger.info(
            "engine held back by slow subscribers",
            metadata: [
                "guard": "\(guardName)", "episodes": "\(unloggedHolds.count)",
                "held_ms": "\(unloggedHolds.time.milliseconds)", "holding_now": "\(holders)",
            ])
        unloggedHolds = (0, .zero)
    }

    /// Logs the drops counted since the last call, one line per subscriber.
    func logDrops() {
        for session in subscribers.values where session.unloggedDrops > 0 {
            logger.warning(
                "messages dropped",
                metadata: [
                    "guard": "\(guardName)", "peer": "\(session.peer.address)", "count": "\(session.unloggedDrops)",
                    "dropped_total": "\(session.dropped)",
                ])
            session.unloggedDrops = 0
        }
    }

    /// Closes `session` and gives back what it held: its topics (a CANCEL upstream for each it
    /// was the last to hold) and its admission slot.
    func remove(_ session: SubscriberSession, reason: String?, level: Logger.Level = .info, error: String? = nil) {
        guard subscribers.removeValue(forKey: session.id) != nil else { return }
        release(session)
        session.close(error: error)
        counters.bytesToPeers += session.connection.bytesWritten
        counters.bytesFromPeers += session.connection.bytesRead
        for topic in session.topics where counts.remove(topic) { upstream.send(.cancel(topic)) }
        admission.release(session.peer.address)
        if let reason {
            logger.log(
                level: level, "subscriber closed",
                metadata: [
                    "guard": "\(guardName)", "peer": "\(session.peer.address)", "reason": "\(reason)",
                    "delivered": "\(session.delivered)", "dropped": "\(session.dropped)",
                ])
        }
    }

    /// Handshake deadlines, for subscribers and the upstream link, and `max_stall`. On the
    /// loop, every 200 ms.
    func checkDeadlines(now: ContinuousClock.Instant) {
        for session in subscribers.values {
            if case .handshaking(_, let since) = session.state, now - since > limits.handshakeTimeout {
                logger.warning(
                    "subscriber closed: timeout",
                    metadata: ["guard": "\(guardName)", "peer": "\(session.peer.address)", "rule": "handshake_timeout"])
                admission.strike(session.peer.address, reason: .timeout)
                remove(session, reason: nil)
            } else if limits.onOverflow != .drop, session.isStalled(now: now) {
                evict(session, rule: "max_stall", now: now)
            }
        }
        upstream.checkDeadline(now: now)
        // A safety net against a missed Dispatch event (see Connection.nudge): cheap, and a
        // no-op when nothing is pending.
        upstream.nudge()
        for session in subscribers.values where session.queuedBytes > 0 { session.connection.nudge() }
    }

    /// Whether the engine is held back now, and since when.
    var heldBackSince: ContinuousClock.Instant? { heldSince }

    /// Closes every subscriber and the upstream link.
    func shutdown() {
        for session in subscribers.values { remove(session, reason: nil) }
        upstream.stop()
    }

    /// A topic for the log: printable ASCII as is, other bytes as \xNN.
    static func printable(_ topic: [UInt8]) -> String {
        var result = ""
        for byte in topic {
            if byte >= 0x20 && byte < 0x7F && byte != 0x5C {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                result += "\\x" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
            }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
