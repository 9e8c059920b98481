import Dispatch
import Logging
import RingfenceSockets
import SystemPackage

/// Follows the policy file for `[daemon] watch = true`: inotify on the file's directory and its
/// resolved target's (`PolicyFileTracker.directories`), events debounced (`Debounce`: 100 ms
/// of quiet, at most 1 s), then the file read and, only if its content changed, `onChange`
/// called (the daemon's reload, the one SIGHUP uses). A Kubernetes ConfigMap update (a new
/// timestamped directory, `..data` renamed over, the old directory deleted) is one burst and
/// one reload; a `touch` is none.
///
/// Everything runs on `queue` (the daemon's); `stop()` there too. The inotify descriptor is
/// closed by the read source's cancel handler (docs/libdispatch.md §5). `@unchecked Sendable`
/// because its state is confined to `queue`, as the daemon's is.
final class PolicyWatch: @unchecked Sendable {
    /// The policy file as the daemon names it (a symbolic link, for a ConfigMap).
    let path: String
    private let queue: DispatchQueue
    private let logger: Logger
    private let onChange: () -> Void
    private let inotify: Inotify
    private let source: any DispatchSourceRead
    private let timer: any DispatchSourceTimer
    private var debounce = Debounce()
    private var tracker: PolicyFileTracker
    /// The watch descriptors, by directory.
    private var watches: [String: Int32] = [:]
    private var stopped = false

    /// The most of a policy file read to compare it (the parser refuses larger files anyway).
    static let readLimit = 1 << 24

    /// Starts watching; the content now is the baseline (the daemon just loaded it).
    /// - Throws: `Errno` when no inotify instance can be made (a directory that cannot be
    ///   watched is logged, and tried again after the next burst).
    init(path: String, queue: DispatchQueue, logger: Logger, onChange: @escaping () -> Void) throws(Errno) {
        dispatchPrecondition(condition: .onQueue(queue))
        self.path = path
        self.queue = queue
        self.logger = logger
        self.onChange = onChange
        inotify = try Inotify()
        tracker = PolicyFileTracker(contents: Self.read(path))
        source = DispatchSource.makeReadSource(fileDescriptor: inotify.descriptor, queue: queue)
        timer = DispatchSource.makeTimerSource(queue: queue)
        let inotify = inotify
        source.setEventHandler { [weak self] in self?.eventsArrived() }
        source.setCancelHandler { inotify.close() }
        timer.setEventHandler { [weak self] in self?.settle() }
        timer.schedule(deadline: .distantFuture, leeway: .milliseconds(10))
        rearm()
        source.resume()
        timer.resume()
    }

    /// Stops watching: no reload starts after this returns. On `queue`.
    func stop() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard !stopped else { return }
        stopped = true
        timer.cancel()
        source.cancel()
    }

    deinit {
        if !stopped {
            timer.cancel()
            source.cancel()
        }
    }

    private func eventsArrived() {
        guard !stopped, inotify.drain() > 0 else { return }
        let due = debounce.event(at: .now)
        let delay = max(due - .now, .zero)
        timer.schedule(deadline: .now() + .nanoseconds(Int(delay.nanoseconds)), leeway: .milliseconds(10))
    }

    /// A burst ended: follow the links anew, then reload if the content changed.
    private func settle() {
        guard !stopped, debounce.fired() else { return }
        rearm()
        switch tracker.observe(Self.read(path)) {
        case .changed:
            logger.info("policy file changed; reloading", metadata: ["path": "\(path)"])
            onChange()
        case .vanished:
            logger.warning("policy file cannot be read; the policy in force stays", metadata: ["path": "\(path)"])
        case .unchanged:
            break
        }
    }

    /// Watches the directories the file's links lead through now, and drops the ones they no
    /// longer do (a ConfigMap's old timestamped directory; the kernel drops the watch of a
    /// deleted directory itself).
    private func rearm() {
        let wanted = PolicyFileTracker.directories(path: path, resolved: Posix.resolvedPath(path))
        var next: [String: Int32] = [:]
        for directory in wanted {
            do {
                next[directory] = try inotify.watch(directory)
            } catch {
                logger.warning(
                    "cannot watch a directory of the policy file", metadata: ["directory": "\(directory)", "error": "\(error)"])
            }
        }
        for (directory, watch) in watches where next[directory] != watch && !next.values.contains(watch) {
            inotify.unwatch(watch)
        }
        watches = next
    }

    /// Non-blocking: a FIFO put in place of the policy would otherwise hold the watch until
    /// something writes to it; read as empty, it is a change, and the reload refuses it
    /// (docs/reliability.md, "Bad input at the edges").
    private static func read(_ path: String) -> [UInt8]? {
        try? Posix.readFile(path, limit: readLimit, nonBlocking: true)
    }
}
