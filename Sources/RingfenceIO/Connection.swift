import DequeModule
import RingfenceSockets
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A stream connection on one loop: reads delivered to a handler, and writes through a bounded
/// queue of shared buffers flushed with gathered writes (writev).
///
/// Queued buffers are not copied: the same `SharedBytes` enqueued on many connections is one
/// buffer, which is what a fan-out needs. Small buffers may be copied instead (`copyingUpTo`)
/// into the connection's own tail buffer, where consecutive ones join into one contiguous run:
/// many small messages then leave in one large write, not one iovec each. A group of buffers
/// (a whole message) is queued all or nothing, and its flush may be deferred so that a burst
/// leaves in few writes. A reader of large bodies can have the next read land straight in its
/// own buffer (`readTarget`).
/// `write` refuses what would take the queue past `writeLimit`,
/// so the owner decides what overflow means (drop, disconnect); `onDrained` says when the queue
/// has emptied. Half-close: `shutdownWrite()` sends a FIN once the queue is flushed. When reads
/// are attempted — after a pause, after the per-wake-up bound, on a nudge, while busy polling —
/// is its `Channel`'s business, the same as for the relay's pumps. Confined to its loop.
///
/// Why the relay's pumps are not strategies of this type: a connection is one socket whose bytes
/// pass through user space (read into a buffer for the owner; writes from a queue of shared
/// buffers, which a fan-out needs), while a pump joins two sockets and, spliced, keeps the
/// payload in a kernel pipe. Folding the two together would put a pipe and a second socket into
/// every broker subscriber, or a user-space copy into every relayed byte; what they share, the
/// waiting for bytes, lives in `Channel` and `BusyPoller`.
public final class Connection: @unchecked Sendable {
    public let loop: EventLoop
    /// The most bytes the write queue may hold.
    public var writeLimit: Int
    /// Called with the bytes of each read.
    public var onRead: (UnsafeRawBufferPointer) -> Void = { _ in }
    /// Called once when the peer has finished sending.
    public var onEndOfInput: () -> Void = {}
    /// Called once on a socket error; the connection is closed.
    public var onError: (Errno) -> Void = { _ in }
    /// Called whenever the write queue becomes empty after having held bytes.
    public var onDrained: () -> Void = {}
    /// Called after a flush that wrote queued bytes but left some queued (the socket took part
    /// of the queue): an owner holding its producer back can tell when to let it go on before
    /// the queue is empty. `onDrained` covers a flush that empties the queue.
    public var onPartialFlush: () -> Void = {}

    private var channel: Channel!
    /// Where the next read goes instead of the connection's own buffer (a large body read straight
    /// into place), or nil for the connection's buffer; such reads are reported to `onReadIntoTarget`.
    public var readTarget: () -> UnsafeMutableRawBufferPointer? = { nil }
    /// Called with the byte count of each read into `readTarget`'s buffer.
    public var onReadIntoTarget: (Int) -> Void = { _ in }

    /// After a read that brought bytes, how long the connection keeps reading by polling (see
    /// `BusyPoller`) before it sleeps until Dispatch wakes it. Zero: off. Set before reading.
    public var busyPoll = Duration.zero {
        didSet { makePoller() }
    }
    /// How the polling waits between reads; set before `busyPoll`.
    public var busyPollMode = BusyPoller.Mode.spin {
        didSet { makePoller() }
    }
    private var poller: BusyPoller?
    /// Whether reads are being polled now (the read source suspended).
    var isBusyPolling: Bool { poller?.isPolling ?? false }

    /// What is queued, in order: byte ranges of shared buffers and of tails.
    private var chunks = Deque<Chunk>()
    /// Where small writes are copied (see `write(_:copyingUpTo:flush:)`), and how much of it is
    /// used; reused from its start whenever the queue empties.
    private var tail: SharedBytes?
    private var tailUsed = 0
    public private(set) var queuedBytes = 0
    /// Bytes written to the socket since the connection was made.
    public private(set) var bytesWritten: UInt64 = 0
    /// Bytes read from the socket since the connection was made.
    public private(set) var bytesRead: UInt64 = 0
    private let readBuffer: UnsafeMutableRawBufferPointer
    private var wantsShutdown = false
    private var inputEnded = false
    public private(set) var isClosed = false

    /// - Parameter socket: the connected socket, which the connection now owns and closes.
    public init(socket: consuming Socket, loop: EventLoop, writeLimit: Int, readBufferSize: Int = 64 << 10) {
        self.loop = loop
        self.writeLimit = writeLimit
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        channel = Channel(
            socket: socket, loop: loop,
            onReadable: { [unowned self] in readAvailable() },
            onWritable: { [unowned self] in flushQueue() })
    }

    deinit {
        readBuffer.deallocate()
    }

    public var fd: Int32 { channel.fd }

    private func makePoller() {
        poller?.stop()
        poller = BusyPoller(
            window: busyPoll, mode: busyPollMode, loop: loop, channels: { [unowned self] in [channel] })
    }

    /// Whether the socket refused bytes and the connection waits for it to become writable.
    public var isWaitingToWrite: Bool { channel.isWriting }

    /// Turns reading on or off (backpressure from the owner). On the loop.
    public func setReading(_ on: Bool) {
        guard !isClosed, !inputEnded, on != channel.isReading else { return }
        if !on { poller?.stop() }
        channel.setReading(on)
    }

    /// Queues `bytes`, writing at once what the socket takes.
    /// - Returns: false, queuing nothing, when the queue would pass `writeLimit` or the
    ///   connection is closed or shutting down.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        write([SharedBytes(bytes)])
    }

    /// Queues `buffers` whole or not at all.
    /// - Returns: false, queuing nothing, when the queue would pass `writeLimit` or the
    ///   connection is closed or shutting down.
    /// - Parameters:
    ///   - copyingUpTo: buffers of at most this many bytes are copied into the connection's tail
    ///     rather than queued by reference (at most `Connection.tailCapacity`; 0: none).
    ///   - flush: write at once what the socket takes; false leaves that to `flush()` (or to the
    ///     socket's next writable event), so several writes leave in one writev.
    @discardableResult
    public func write(_ buffers: [SharedBytes], copyingUpTo copyLimit: Int = 0, flush: Bool = true) -> Bool {
        guard !isClosed, !wantsShutdown else { return false }
        var total = 0
        for buffer in buffers { total += buffer.count }
        guard queuedBytes + total <= writeLimit else { return false }
        guard total > 0 else { return true }
        let wasEmpty = chunks.isEmpty
        let copyLimit = min(copyLimit, Self.tailCapacity)
        for buffer in buffers where buffer.count > 0 {
            if buffer.count <= copyLimit {
                buffer.withUnsafeBytes { appendCopy($0) }
            } else {
                chunks.append(Chunk(bytes: buffer, start: 0, end: buffer.count))
            }
        }
        queuedBytes += total
        if flush && wasEmpty { self.flush() }
        return true
    }

    /// The size of a tail buffer: large enough that a burst of small messages leaves in few
    /// writes, small enough to keep for the connection's life.
    public static let tailCapacity = 32 << 10

    /// Copies `bytes` to the end of the tail, joining the last queued chunk when that ends where
    /// the tail does; a full tail is left to its queued chunks and a new one started.
    private func appendCopy(_ bytes: UnsafeRawBufferPointer) {
        if tail == nil || tailUsed + bytes.count > Self.tailCapacity {
            tail = SharedBytes(count: Self.tailCapacity)
            tailUsed = 0
        }
        let tail = tail!
        tail.withUnsafeMutableBytes { storage in
            UnsafeMutableRawBufferPointer(rebasing: storage[tailUsed..<(tailUsed + bytes.count)]).copyMemory(from: bytes)
        }
        if let last = chunks.last, last.bytes === tail, last.end == tailUsed {
            chunks[chunks.count - 1].end += bytes.count
        } else {
            chunks.append(Chunk(bytes: tail, start: tailUsed, end: tailUsed + bytes.count))
        }
        tailUsed += bytes.count
    }

    /// One read attempt and one write attempt now, whatever the Dispatch sources say: a
    /// safety net against a missed event (see the relay's sweep), for an owner's periodic check.
    public func nudge() {
        guard !isClosed else { return }
        // Writes queued with `flush: false` are flushed too (the channel only retries a write it
        // is waiting on).
        if queuedBytes > 0, !channel.isWriting { flushQueue() }
        channel.nudge()
    }

    /// Writes what the socket takes of the queue now (after writes queued with `flush: false`).
    public func flush() {
        guard !isClosed, !channel.isWriting, queuedBytes > 0 else { return }
        flushQueue()
    }

    /// Sends a FIN once everything queued has been written.
    public func shutdownWrite() {
        guard !isClosed, !wantsShutdown else { return }
        wantsShutdown = true
        if queuedBytes == 0 { Posix.shutdownWrite(channel.fd) }
    }

    /// Closes the socket; queued bytes are discarded. `reset` sends an RST instead of a FIN.
    public func close(reset: Bool = false) {
        guard !isClosed else { return }
        isClosed = true
        poller?.stop()
        chunks.removeAll()
        tail = nil
        queuedBytes = 0
        channel.close(reset: reset)
        // A closed connection calls nobody back; dropping the handlers also breaks any cycle
        // through them (an owner that captured the connection).
        onRead = { _ in }
        onEndOfInput = {}
        onError = { _ in }
        onDrained = {}
        onPartialFlush = {}
        readTarget = { nil }
        onReadIntoTarget = { _ in }
    }

    private func readAvailable() {
        guard !isClosed, !inputEnded, channel.isReading else { return }
        for _ in 0..<4 {
            do throws(Errno) {
                let target = readTarget()
                switch try Posix.read(channel.fd, into: target ?? readBuffer) {
                case .done(0):
                    inputEnded = true
                    poller?.stop()
                    channel.setReading(false)
                    onEndOfInput()
                    return
                case .done(let count):
                    bytesRead &+= UInt64(count)
                    poller?.activity()
                    if target != nil {
                        onReadIntoTarget(count)
                    } else {
                        onRead(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                    }
                    if isClosed || !channel.isReading { return }
                case .wouldBlock:
                    return
                }
            } catch {
                fail(error)
                return
            }
        }
        // More may be queued: another turn, fair to the loop's other connections.
        channel.readAgain()
    }

    private func flushQueue() {
        guard !isClosed else { return }
        var wrote = false
        while queuedBytes > 0 {
            let written: Int
            do throws(Errno) {
                guard case .done(let count) = try writeGathered() else {
                    channel.setWriting(true)
                    if wrote { onPartialFlush() }
                    return
                }
                written = count
            } catch {
                return fail(error)
            }
            consume(written)
            wrote = true
        }
        channel.setWriting(false)
        if wantsShutdown { Posix.shutdownWrite(channel.fd) }
        onDrained()
    }

    /// One writev of up to 1024 queued chunks (IOV_MAX) and `gatherBytes`: no socket takes
    /// more at once, and a long queue (a slow subscriber's) then costs a short vector per write.
    private func writeGathered() throws(Errno) -> IOResult<Int> {
        var vectors: [iovec] = []
        vectors.reserveCapacity(min(chunks.count, 1024))
        return try withExtendedLifetime(chunks) { () throws(Errno) -> IOResult<Int> in
            var bytes = 0
            for chunk in chunks {
                chunk.bytes.withUnsafeBytes { raw in
                    vectors.append(
                        iovec(
                            iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + chunk.start),
                            iov_len: chunk.end - chunk.start))
                }
                bytes += chunk.end - chunk.start
                if vectors.count == 1024 || bytes >= Self.gatherBytes { break }
            }
            return try Posix.writeVectors(channel.fd, vectors)
        }
    }

    /// The most one gathered write offers: more than a socket's send buffer takes at once
    /// (Linux's tcp_wmem maximum is 4 MiB by default).
    static let gatherBytes = 8 << 20

    private func consume(_ written: Int) {
        var left = written
        queuedBytes -= written
        bytesWritten += UInt64(written)
        while left > 0 {
            let available = chunks[0].end - chunks[0].start
            if left >= available {
                left -= available
                chunks.removeFirst()
            } else {
                chunks[0].start += left
                left = 0
            }
        }
        // Nothing refers to the tail's bytes any more: the next copies start again at its start.
        if chunks.isEmpty { tailUsed = 0 }
    }

    private func fail(_ error: Errno) {
        let handler = onError
        close(reset: true)
        handler(error)
    }
}

/// A queued byte range of a buffer.
private struct Chunk {
    let bytes: SharedBytes
    var start: Int
    var end: Int
}
