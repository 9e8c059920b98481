import SystemPackage

/// Why the listeners could not be listed or watched, with what to do about it.
public enum ListenerError: Error, Equatable, CustomStringConvertible {
    /// The netlink sock_diag socket or its dump was refused.
    case sockDiagRefused(Errno)
    /// The dump failed otherwise (a timeout, a truncated answer).
    case sockDiagFailed(Errno)
    /// The watch thread or its stop pipe could not be made.
    case watchNotStarted(String)
    /// `start()` on a watch that runs or has been stopped.
    case alreadyStarted

    public var description: String {
        switch self {
        case .sockDiagRefused(let errno):
            "sock_diag refused (\(errno)): proxyd needs CAP_NET_ADMIN and a seccomp profile that allows "
                + "NETLINK_SOCK_DIAG sockets to list the namespace's TCP listeners"
        case .sockDiagFailed(let errno):
            "listing TCP sockets over sock_diag failed (\(errno)); if it persists, check the kernel has "
                + "CONFIG_INET_DIAG and CONFIG_INET_TCP_DIAG"
        case .watchNotStarted(let reason):
            "the listener watch could not start: \(reason) (raise the process or thread limits)"
        case .alreadyStarted:
            "this listener watch was already started: make a new one"
        }
    }

    static func listing(_ errno: Errno) -> ListenerError {
        errno == .permissionDenied || errno == .notPermitted ? .sockDiagRefused(errno) : .sockDiagFailed(errno)
    }
}
