import RingfenceAddresses
import RingfenceIO
import RingfenceSockets
import RingfenceStatus

/// What a kind of guard supplies behind the shared front end (`GuardFrontEnd`): its sessions
/// and its part of the snapshot. The front end owns the listeners, admission, the denial log,
/// the redirect check and the timers, and calls these.
public protocol GuardSessions: AnyObject, Sendable {
    /// The loop that accepts and runs the front end's housekeeping timer.
    var acceptLoop: EventLoop { get }
    /// The loops that hold sessions; each gets a deadline sweep every 200 ms.
    var loops: [EventLoop] { get }
    /// Listening has begun; `upstream` is the fixed upstream, resolved (nil: per connection).
    func started(upstream: SocketAddress?)
    /// An admitted socket from `peer` headed for `destination` (the fixed upstream, or its
    /// original destination). On the accept loop; the callee owns `socket` and must close it,
    /// also when the session cannot start.
    func admitted(_ socket: consuming Socket, peer: SocketAddress, destination: SocketAddress)
    /// Closes the live sessions whose peer `matches`, for `reason`, and lists them sorted by
    /// id. Called off the loops; blocks until done.
    func close(for reason: CutReason, where matches: @escaping @Sendable (IPAddress) -> Bool) -> [ReloadReport.Cut]
    /// Checks the deadlines of `loop`'s sessions. On `loop`.
    func sweep(on loop: EventLoop, now: ContinuousClock.Instant)
    /// Every 5 s on the accept loop, after the denial log's flush (the broker logs its drops).
    func housekeeping()
    /// `base` filled in with the sessions' counters, connections and upstream. Off the loops;
    /// blocks until taken.
    func snapshot(base: GuardStatus) -> GuardSnapshot
    /// Closes every session (and upstream link). Returns at once.
    func shutdown()
}
