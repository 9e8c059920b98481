/// How a `ListenerWatch` notices listeners (docs/listeners.md §1, §5).
public enum WatchMethod: String, Sendable {
    /// The `sock:inet_sock_set_state` tracepoint, read from a private tracefs instance.
    case tracepoint
    /// A sock_diag listing every poll interval.
    case polling
}

/// A change to this namespace's TCP listeners. `owner` is nil when the process could not be
/// found (it exited, or holds the socket only through a descriptor passed away and closed).
public enum ListenerEvent: Hashable, Sendable {
    case appeared(ListeningSocket, owner: SocketOwner?)
    case disappeared(ListeningSocket)
}
