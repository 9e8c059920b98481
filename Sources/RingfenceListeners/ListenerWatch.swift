import Dispatch
import RingfenceSockets
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Watches this network namespace's TCP listeners and calls `handler` on `queue` with batches of
/// events: `appeared` within about a millisecond of listen(2) with the tracepoint, within
/// `pollInterval` and a dump when polling (docs/listeners.md §1, §5).
///
/// The listeners present at `start()` are not reported: the watch's baseline is its own listing,
/// made in `start()`. A caller that wants them lists with `SocketListing.listeners()` before
/// starting; a listener that opens or closes between that listing and `start()` is then in
/// neither, so list again after `start()` and compare if that window matters.
/// The watch runs on a thread of its own in the network namespace of the thread that calls
/// `start()`.
public final class ListenerWatch: @unchecked Sendable {
    private enum Phase {
        case idle
        case running(thread: pthread_t, stop: FileDescriptor, instance: TraceInstance?)
        case stopped
    }

    private let prefer: WatchMethod
    private let pollInterval: Duration
    private let queue: DispatchQueue
    private let handler: @Sendable ([ListenerEvent]) -> Void
    private let phase = Mutex<Phase>(.idle)
    private let reason = Mutex<String?>(nil)

    /// The tracefs instance directory while the tracepoint is in use (for the log), else nil.
    public var tracefsInstance: String? {
        phase.withLock { phase in
            if case .running(_, _, let instance) = phase { instance?.path } else { nil }
        }
    }

    /// Why the tracepoint could not be used, when `start()` fell back to polling (or was asked to
    /// poll: then "polling was asked for").
    public private(set) var fallbackReason: String? {
        get { reason.withLock { $0 } }
        set { reason.withLock { $0 = newValue } }
    }

    public init(
        prefer: WatchMethod = .tracepoint, pollInterval: Duration = .milliseconds(10), queue: DispatchQueue,
        handler: @escaping @Sendable ([ListenerEvent]) -> Void
    ) {
        self.prefer = prefer
        self.pollInterval = max(pollInterval, .milliseconds(1))
        self.queue = queue
        self.handler = handler
    }

    deinit { stop() }

    /// Starts watching; returns the method in use. It throws when the listeners cannot be listed
    /// at all (sock_diag refused) or the thread cannot start; a tracepoint that cannot be used is
    /// no error: the watch polls, and `fallbackReason` says why.
    public func start() throws(ListenerError) -> WatchMethod {
        try phase.withLock { phase throws(ListenerError) -> WatchMethod in
            guard case .idle = phase else { throw .alreadyStarted }
            var tracker = ListenerTracker()
            for family in [AF_INET, AF_INET6] {
                _ = tracker.reconcile(family: family, listing: try SocketListing.listeners(family: family))
            }
            var instance: TraceInstance?
            var trace: FileDescriptor?
            if prefer == .tracepoint {
                do throws(TraceInstance.Unavailable) {
                    let created = try TraceInstance.create()
                    instance = created
                    trace = try created.openPipe()
                } catch {
                    instance?.remove()
                    instance = nil
                    fallbackReason = error.reason
                }
            } else {
                fallbackReason = "polling was asked for"
            }
            let pipe: (read: FileDescriptor, write: FileDescriptor, capacity: Int)
            do {
                pipe = try Posix.pipe(capacity: 4096)
            } catch {
                if let trace { _ = try? trace.close() }
                instance?.remove()
                throw .watchNotStarted("no stop pipe (\(error))")
            }
            let loop = WatchLoop(
                stop: pipe.read, trace: trace, pollInterval: pollInterval, tracker: tracker, queue: queue,
                handler: handler)
            let box = Unmanaged.passRetained(loop).toOpaque()
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { context in
                let loop = Unmanaged<WatchLoop>.fromOpaque(context!).takeRetainedValue()
                loop.run()
                return nil
            }, box)
            guard started == 0 else {
                Unmanaged<WatchLoop>.fromOpaque(box).release()
                if let trace { _ = try? trace.close() }
                instance?.remove()
                _ = try? pipe.read.close()
                _ = try? pipe.write.close()
                throw .watchNotStarted("pthread_create failed (\(Errno(rawValue: started)))")
            }
            // The loop owns (and closes) the read end and trace_pipe; stop() closes the write end.
            phase = .running(thread: thread, stop: pipe.write, instance: instance)
            return instance == nil ? .polling : .tracepoint
        }
    }

    /// Stops the thread (promptly: it waits on the stop pipe), then disables the tracepoint and
    /// removes the tracefs instance. Idempotent; `deinit` calls it.
    public func stop() {
        let running = phase.withLock { phase -> (pthread_t, FileDescriptor, TraceInstance?)? in
            guard case .running(let thread, let stop, let instance) = phase else {
                if case .idle = phase { phase = .stopped }
                return nil
            }
            phase = .stopped
            return (thread, stop, instance)
        }
        guard let (thread, stop, instance) = running else { return }
        _ = try? stop.close()  // The loop sees end of file on its read end and returns.
        pthread_join(thread, nil)
        instance?.remove()  // After the loop closed trace_pipe: an instance in use cannot be removed.
    }
}
