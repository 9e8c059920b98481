import Dispatch
import RingfenceSockets

/// A non-blocking socket or pipe end registered with one loop: its descriptor, and a read and
/// a write Dispatch source that the owner turns on and off. Each source is made the first time
/// its direction is turned on: most relayed connections never wait to write, and a source made
/// costs its activation and cancellation on libdispatch's manager thread even if never used
/// (docs/libdispatch.md §11).
///
/// It is also the one place that decides when the owner's `onReadable` runs, so that every
/// owner (the relay's pumps, `Connection`, listeners) waits for bytes the same way. A read
/// attempt comes from the read source; from `setReading(true)`, which always schedules one
/// (libdispatch's epoll backend reports a hang-up once and then stops watching the descriptor,
/// so bytes left queued while reading was off would otherwise never be read); from
/// `readAgain()`, which an owner calls when it stopped early with bytes possibly queued (its
/// per-wake-up bound, fair to the loop's other work); from `nudge()`, the periodic safety net;
/// and from `BusyPoller` turns while the read source is suspended for polling. Every one of them
/// runs on the loop, and none runs once the channel is closed, so a late attempt can never touch
/// a descriptor number that has since been reused. See docs/libdispatch.md.
///
/// Dispatch on Linux is level-triggered, so a source whose event cannot be served (a full
/// buffer, nothing to write) must be switched off or it spins. The descriptor is closed only in
/// the sources' cancel handlers, after both have run (closing earlier lets the number be reused
/// while a source still watches it), and a source is never released suspended or inactive
/// (docs/libdispatch.md §2, §4, §5). Confined to its loop.
public final class Channel: @unchecked Sendable {
    public let fd: Int32
    public let loop: EventLoop
    /// Made on first use (see the type's comment); nil until then.
    private var readSource: (any DispatchSourceRead)?
    private var writeSource: (any DispatchSourceWrite)?
    private let closer: DescriptorCloser
    private let onReadable: () -> Void
    private let onWritable: () -> Void
    /// A `readAgain()` attempt is queued on the loop (at most one at a time).
    private var attemptQueued = false
    public private(set) var isReading = false
    public private(set) var isWriting = false
    public private(set) var isClosed = false
    /// Whether the owner is polling the descriptor itself (busy polling): the read source is then
    /// suspended whatever `isReading` says, so that no thread is woken for bytes the owner will
    /// read anyway.
    public private(set) var isPolled = false
    /// Whether the read source is resumed: `isReading && !isPolled`.
    private var readSourceOn = false

    /// - Parameters:
    ///   - onReadable: called on the loop while reading is on and the descriptor is readable.
    ///   - onWritable: called on the loop while writing is on and the descriptor is writable.
    ///   - socket: the socket, which the channel now owns and closes.
    public init(socket: consuming Socket, loop: EventLoop, onReadable: @escaping () -> Void, onWritable: @escaping () -> Void) {
        fd = socket.fd
        self.loop = loop
        self.onReadable = onReadable
        self.onWritable = onWritable
        closer = DescriptorCloser(socket: socket)
    }

    /// A new source's handlers: the owner's event handler, and the closer's count.
    private func prepare(_ source: any DispatchSourceProtocol, handler: @escaping () -> Void) {
        source.setEventHandler(handler: handler)
        closer.sourceMade()
        source.setCancelHandler { [closer] in closer.sourceCancelled() }
    }

    deinit {
        // Releasing an open channel would leak its descriptor (and, were its sources suspended,
        // crash libdispatch); caught in debug builds, never a crash in production.
        assert(isClosed, "a Channel must be closed before it is released")
    }

    /// Starts or stops the owner's own polling of the descriptor (see `isPolled`).
    public func setPolled(_ polled: Bool) {
        guard !isClosed, polled != isPolled else { return }
        isPolled = polled
        updateReadSource()
    }

    /// Turns reading on or off (the owner's backpressure). Turning it on schedules a read
    /// attempt as well (see the type's comment: bytes may be queued behind a hang-up that
    /// libdispatch has already reported).
    public func setReading(_ on: Bool) {
        guard !isClosed, on != isReading else { return }
        isReading = on
        updateReadSource()
        if on { readAgain() }
    }

    /// Schedules one read attempt on the loop: the owner stopped reading early (its bound per
    /// wake-up, or reading was paused) with bytes possibly still queued. Runs `onReadable` unless,
    /// by then, the channel is closed, not reading, or polled (a poll turn reads anyway).
    /// Attempts asked for while one is queued fold into it.
    public func readAgain() {
        guard !isClosed, !attemptQueued else { return }
        attemptQueued = true
        loop.execute { [weak self] in
            guard let self else { return }
            attemptQueued = false
            guard !isPolled else { return }
            readNow()
        }
    }

    /// One read attempt now, whatever the read source says (a busy-poll turn, a nudge): runs
    /// `onReadable` if the channel is open and reading.
    public func readNow() {
        guard !isClosed, isReading else { return }
        onReadable()
    }

    /// One write attempt (if writing is on) and one read attempt (if reading is on) now,
    /// whatever the Dispatch sources say: a safety net against a missed event, for an owner's
    /// periodic sweep. It moves nothing in the normal case. The write attempt is made only if
    /// poll(2) says the socket is writable: a peer that reads nothing (a stalled subscriber with
    /// a long queue) then costs one cheap syscall per sweep, not a gathered write that fails.
    public func nudge() {
        if !isClosed, isWriting, Posix.waitWritable(fd, timeout: .zero) { onWritable() }
        readNow()
    }

    private func updateReadSource() {
        let on = isReading && !isPolled
        guard on != readSourceOn else { return }
        readSourceOn = on
        if on {
            if readSource == nil {
                let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: loop.queue)
                prepare(source, handler: onReadable)
                readSource = source
            }
            readSource?.resume()
        } else {
            readSource?.suspend()
        }
    }

    public func setWriting(_ on: Bool) {
        guard !isClosed, on != isWriting else { return }
        isWriting = on
        if on {
            if writeSource == nil {
                let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: loop.queue)
                prepare(source, handler: onWritable)
                writeSource = source
            }
            writeSource?.resume()
        } else {
            writeSource?.suspend()
        }
    }

    /// Cancels the sources made; the descriptor is closed once their cancel handlers have run
    /// (at once if none was made).
    /// - Parameter reset: send a TCP reset rather than a FIN (SO_LINGER 0).
    public func close(reset: Bool = false) {
        guard !isClosed else { return }
        isClosed = true
        if reset { Posix.setResetOnClose(fd) }
        if let readSource {
            readSource.setEventHandler(handler: nil)
            readSource.cancel()
            // A suspended source must be resumed to deliver its cancellation (and may not be
            // released otherwise).
            if !readSourceOn { readSource.resume() }
        }
        if let writeSource {
            writeSource.setEventHandler(handler: nil)
            writeSource.cancel()
            if !isWriting { writeSource.resume() }
        }
        closer.closed()
    }
}

/// Closes a socket after the last of its sources has been cancelled, and only then: the one
/// owner of the channel's descriptor. Touched on one loop only.
final class DescriptorCloser: @unchecked Sendable {
    private var socket: Socket?
    /// Sources made and not yet cancelled.
    private var remaining = 0
    private var channelClosed = false

    init(socket: consuming Socket) {
        self.socket = consume socket
    }

    func sourceMade() {
        remaining += 1
    }

    func sourceCancelled() {
        remaining -= 1
        if remaining == 0 && channelClosed { socket.take()?.close() }
    }

    /// The channel is closed: no source will be made; close now if none is left to cancel.
    func closed() {
        channelClosed = true
        if remaining == 0 { socket.take()?.close() }
    }
}
