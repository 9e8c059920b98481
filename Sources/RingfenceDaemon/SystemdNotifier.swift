import RingfenceSockets
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// systemd's service notifications (sd_notify(3)): readiness, reloading, stopping, status and
/// watchdog pings, sent as one datagram each to the socket named by `NOTIFY_SOCKET`.
///
/// Written by hand: the protocol is a single datagram of `KEY=VALUE` lines, and linking
/// libsystemd for it would add a dependency the daemon does not otherwise need.
public struct SystemdNotifier: Sendable {
    /// The socket's path; a leading `@` names an abstract socket.
    public let socketPath: String
    /// How often systemd expects a `WATCHDOG=1` (`WATCHDOG_USEC`), if it asked for pings.
    public let watchdogInterval: Duration?

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`; nil when not run under systemd
    /// with `Type=notify` (no `NOTIFY_SOCKET`), or when the path cannot be a socket address.
    public init?(environment: [String: String]? = nil) {
        let value = { (key: String) -> String? in
            if let environment { return environment[key] }
            return getenv(key).map { String(cString: $0) }
        }
        guard let path = value("NOTIFY_SOCKET"), !path.isEmpty, path.utf8.count <= Posix.maxUnixPathBytes,
            path.hasPrefix("/") || path.hasPrefix("@")
        else { return nil }
        socketPath = path
        let forUs = value("WATCHDOG_PID").map { Int32($0) == getpid() } ?? true
        if forUs, let text = value("WATCHDOG_USEC"), let microseconds = Int64(text), microseconds > 0 {
            watchdogInterval = .microseconds(microseconds)
        } else {
            watchdogInterval = nil
        }
    }

    /// Half the watchdog interval, as sd_watchdog_enabled(3) advises.
    public var watchdogPingInterval: Duration? { watchdogInterval.map { $0 / 2 } }

    /// `READY=1`, with a status line.
    public func ready(status: String) throws(SystemdNotifierError) {
        try notify("READY=1\nSTATUS=\(status)\nMAINPID=\(getpid())")
    }

    /// `RELOADING=1` with the monotonic time systemd (253 and later) wants beside it.
    public func reloading() throws(SystemdNotifierError) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        try notify("RELOADING=1\nMONOTONIC_USEC=\(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)")
    }

    public func stopping() throws(SystemdNotifierError) { try notify("STOPPING=1") }

    public func watchdog() throws(SystemdNotifierError) { try notify("WATCHDOG=1") }

    /// Sends `state` as one datagram.
    public func notify(_ state: String) throws(SystemdNotifierError) {
        do throws(Errno) {
            try Posix.sendDatagram(Array(state.utf8), toUnixPath: socketPath)
        } catch {
            throw SystemdNotifierError(socketPath: socketPath, error: error)
        }
    }
}

/// A notification systemd did not get: the socket is gone or refuses.
public struct SystemdNotifierError: Error, Sendable, CustomStringConvertible {
    public let socketPath: String
    public let error: Errno

    public var description: String {
        "could not notify systemd on \(socketPath): \(error) (is NOTIFY_SOCKET stale?)"
    }
}
