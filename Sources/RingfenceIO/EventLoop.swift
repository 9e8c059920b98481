import Dispatch
import RingfenceSockets

/// One serial `DispatchQueue` and the sources and timers registered on it.
///
/// Everything a loop owns — its channels, their buffers, their sessions — is touched only on
/// `queue`, so the data path needs no locks. Code that assumes it runs there calls
/// `preconditionInLoop()` (docs/libdispatch.md §1).
public final class EventLoop: @unchecked Sendable {
    public let queue: DispatchQueue
    /// Its place in its `EventLoopGroup` (0 for a loop of its own).
    public let index: Int

    /// - Parameter label: the queue's name (default `ringfence.loop.INDEX`).
    public init(index: Int, label: String? = nil) {
        self.index = index
        queue = DispatchQueue(label: label ?? "ringfence.loop.\(index)")
    }

    /// Runs `work` on the loop, later.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    public func preconditionInLoop() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    /// A repeating timer on this loop, started at once; cancel it to stop it.
    public func repeatingTimer(every interval: Duration, _ handler: @escaping () -> Void) -> any DispatchSourceTimer {
        queue.repeatingTimer(every: interval, handler)
    }
}

extension DispatchQueue {
    /// A repeating timer on this queue, first firing after `interval`, started at once; cancel
    /// it to stop it.
    public func repeatingTimer(every interval: Duration, _ handler: @escaping () -> Void) -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: self)
        let nanoseconds = Int(interval.nanoseconds)
        timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(nanoseconds), leeway: .milliseconds(10))
        timer.setEventHandler(handler: handler)
        timer.resume()
        return timer
    }
}

/// A fixed set of loops; connections are spread over them round-robin.
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private let counter = Counter()

    /// - Parameter count: the number of loops (default: one per core).
    public init(count: Int = System.coreCount) {
        loops = (0..<max(1, count)).map { EventLoop(index: $0) }
    }

    /// The loop for the next connection.
    public func next() -> EventLoop {
        loops[counter.next() % loops.count]
    }
}

/// A thread-safe incrementing counter.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = DispatchQueue(label: "ringfence.counter")

    func next() -> Int {
        lock.sync {
            value &+= 1
            return value & Int.max
        }
    }
}

/// Facts about the machine.
public enum System {
    /// The number of online cores.
    public static var coreCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
