import Dispatch
import RingfenceSockets
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The body of a `ListenerWatch`'s thread (docs/listeners.md §5): it waits on the stop pipe and,
/// with the tracepoint, on trace_pipe; it lists, diffs and reports. All its state lives on that one
/// thread. The thread runs in the network namespace of the thread that started the watch.
final class WatchLoop: @unchecked Sendable {
    /// Confirmation listings after a listen record before the socket counts as not ours
    /// (docs/listeners.md §3: the record can come before the socket is in the listening hash).
    static let confirmAttempts = 8
    static let confirmPause: Duration = .microseconds(100)
    /// The reconciling listing while the tracepoint is in use: a lost record is found by then.
    static let safetyInterval: Duration = .seconds(1)

    private let stop: FileDescriptor
    private var trace: FileDescriptor?
    private let interval: Duration
    private let queue: DispatchQueue
    private let handler: @Sendable ([ListenerEvent]) -> Void
    private var tracker: ListenerTracker
    private var pending: [UInt8] = []
    private var namespace: String?
    /// The netlink socket every listing of this loop goes over (made on the loop's thread, so in
    /// its namespace); nil if it could not be made: then each listing makes its own.
    private var session: TCPSocketTable.Session?
    /// The processes that owned the listeners found last, most recent first: where the next
    /// owner is looked for first.
    private var recentOwners: [Int32] = []

    init(stop: FileDescriptor, trace: FileDescriptor?, pollInterval: Duration, tracker: ListenerTracker,
         queue: DispatchQueue, handler: @escaping @Sendable ([ListenerEvent]) -> Void) {
        self.stop = stop
        self.trace = trace
        self.interval = trace == nil ? pollInterval : WatchLoop.safetyInterval
        self.tracker = tracker
        self.queue = queue
        self.handler = handler
    }

    func run() {
        namespace = Posix.readLink("/proc/thread-self/ns/net")
        session = try? TCPSocketTable.Session()
        let clock = ContinuousClock()
        var next = clock.now + interval
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        defer {
            if let trace { _ = try? trace.close() }
            _ = try? stop.close()
        }
        while true {
            let fds = [stop.rawValue] + (trace.map { [$0.rawValue] } ?? [])
            Posix.waitReadable(fds, timeout: max(.zero, next - clock.now))
            if stopRequested(&chunk) { return }
            if let trace { drain(trace, &chunk) }
            if clock.now >= next {
                reconcile(families: [AF_INET, AF_INET6], listenerPid: nil, port: nil)
                next = clock.now + interval
            }
        }
    }

    private func stopRequested(_ chunk: inout [UInt8]) -> Bool {
        let result = chunk.withUnsafeMutableBytes { try? Posix.read(stop.rawValue, into: $0) }
        if case .done = result { return true }  // A byte, or the write end closed.
        return false
    }

    /// Reads what trace_pipe holds (bounded per wake-up) and handles each complete line.
    private func drain(_ trace: FileDescriptor, _ chunk: inout [UInt8]) {
        for _ in 0..<16 {
            guard case .done(let count)? = chunk.withUnsafeMutableBytes({ try? Posix.read(trace.rawValue, into: $0) }),
                  count > 0
            else { return }
            pending += chunk[0..<count]
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if let record = TraceLine(line[...]) { handle(record) }
            }
            if pending.count > 4096 { pending.removeAll() }  // No line is this long: resynchronise.
        }
    }

    private func handle(_ record: TraceLine) {
        if record.isListen {
            guard isOurNamespace(record.pid) != false else { return }
            confirmListen(record)
        } else if record.isUnlisten, tracker.knows(family: record.family, port: record.port) {
            reconcile(families: [record.family], listenerPid: nil, port: nil)
        }
    }

    /// Lists the record's family until its port shows up (or the attempts run out: then it is
    /// another namespace's listener, or one already closed).
    private func confirmListen(_ record: TraceLine) {
        for attempt in 0..<WatchLoop.confirmAttempts {
            if attempt > 0 { Posix.waitReadable([], timeout: WatchLoop.confirmPause) }
            guard let listing = try? SocketListing.listeners(family: record.family, on: session) else { return }
            if listing.contains(where: { $0.port == record.port }) {
                report(family: record.family, listing: listing, listenerPid: record.pid, port: record.port)
                return
            }
        }
    }

    /// Whether task `pid` is in this watch's network namespace; nil when either cannot be read.
    private func isOurNamespace(_ pid: Int32) -> Bool? {
        guard let namespace, let theirs = Posix.readLink("/proc/\(pid)/ns/net") else { return nil }
        return theirs == namespace
    }

    private func reconcile(families: [Int32], listenerPid: Int32?, port: UInt16?) {
        if families.count > 1, let byFamily = try? SocketListing.listenersByFamily(on: session) {
            for (family, listing) in byFamily.sorted(by: { $0.key < $1.key }) {
                report(family: family, listing: listing, listenerPid: listenerPid, port: port)
            }
            return
        }
        for family in families {  // One dump per family: also where the combined request is refused.
            guard let listing = try? SocketListing.listeners(family: family, on: session) else { continue }
            report(family: family, listing: listing, listenerPid: listenerPid, port: port)
        }
    }

    /// Diffs `listing` with what is known and hands the changes to the handler. The owner of the
    /// listener on `port` comes from `listenerPid` (the record's task); the others', or if that
    /// task is gone, from one /proc scan.
    private func report(family: Int32, listing: [ListeningSocket], listenerPid: Int32?, port: UInt16?) {
        let (appeared, disappeared) = tracker.reconcile(family: family, listing: listing)
        guard !appeared.isEmpty || !disappeared.isEmpty else { return }
        var owners: [UInt64: SocketOwner] = [:]
        if let listenerPid, let port, let owner = ProcessTable.owner(pid: listenerPid) {
            for socket in appeared where socket.port == port { owners[socket.inode] = owner }
        }
        let unknown = Set(appeared.map(\.inode)).subtracting(owners.keys)
        owners.merge(ProcessTable.owners(of: unknown, preferring: recentOwners)) { first, _ in first }
        for owner in owners.values where recentOwners.first != owner.pid {
            recentOwners.removeAll { $0 == owner.pid }
            recentOwners.insert(owner.pid, at: 0)
        }
        if recentOwners.count > 8 { recentOwners.removeLast(recentOwners.count - 8) }
        let events = disappeared.map { ListenerEvent.disappeared($0) }
            + appeared.map { ListenerEvent.appeared($0, owner: owners[$0.inode]) }
        let handler = handler
        queue.async { handler(events) }
    }
}
