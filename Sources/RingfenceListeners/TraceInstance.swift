import RingfenceSockets
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A private tracefs instance that records only TCP changes into and out of LISTEN
/// (docs/listeners.md §2, §6): `instances/ringfence-PID` under the tracefs mount, its own ring
/// buffer and its own event switch, so the host's tracing is left untouched.
struct TraceInstance {
    static let root = "/sys/kernel/tracing"
    static let prefix = "ringfence-"
    static let event = "events/sock/inet_sock_set_state"
    /// TCP_LISTEN is 10; the fields are the tracepoint format's (`oldstate`, `newstate`, `protocol`).
    static let filter = "(newstate == 10 || oldstate == 10) && protocol == 6"

    /// Per CPU; the kernel's default (about 1.4 MiB per CPU) would be hundreds of MiB on a
    /// large host, for records that are a few a second.
    static let bufferKilobytes = 128

    /// The instance directory.
    let path: String

    /// Why the tracepoint cannot be used here: the reason `ListenerWatch.fallbackReason` gives.
    struct Unavailable: Error { let reason: String }

    /// How many instances this process has made: the first is `ringfence-PID`, later ones
    /// `ringfence-PID-N`, so two watches in one process never share (or remove) one.
    private static let made = Atomic<Int>(0)

    /// Mounts tracefs if needed, removes stale instances of dead proxyd processes, and makes,
    /// filters and enables an instance of this process's own. On failure nothing is left behind.
    static func create(pid: Int32 = getpid()) throws(Unavailable) -> TraceInstance {
        if !Posix.exists(root + "/instances") {
            do {
                try Posix.mountPseudo(type: "tracefs", at: root)
            } catch {
                throw Unavailable(reason: "tracefs is not mounted at \(root) and mounting it failed (\(error))")
            }
        }
        guard Posix.exists(root + "/" + event) else {
            throw Unavailable(reason: "the kernel has no sock:inet_sock_set_state tracepoint")
        }
        removeStale()
        let number = made.add(1, ordering: .relaxed).newValue
        let instance = TraceInstance(path: "\(root)/instances/\(prefix)\(pid)" + (number > 1 ? "-\(number)" : ""))
        do {
            try Posix.makeDirectory(instance.path)
        } catch {
            throw Unavailable(reason: "cannot make the tracefs instance \(instance.path) (\(error))")
        }
        // A small ring buffer: it holds only listen and unlisten records (docs/listeners.md §2).
        try? Posix.writeFile(instance.path + "/buffer_size_kb", String(bufferKilobytes))
        do {
            try Posix.writeFile(instance.path + "/" + event + "/filter", filter)
            try Posix.writeFile(instance.path + "/" + event + "/enable", "1")
        } catch {
            instance.remove()
            throw Unavailable(reason: "cannot filter or enable the tracepoint in \(instance.path) (\(error))")
        }
        return instance
    }

    /// trace_pipe, non-blocking: a read takes the records written since (and consumes them).
    func openPipe() throws(Unavailable) -> FileDescriptor {
        do {
            return try Posix.openForReading(path + "/trace_pipe", nonBlocking: true)
        } catch {
            throw Unavailable(reason: "cannot open \(path)/trace_pipe (\(error))")
        }
    }

    /// Disables the event and removes the directory (trace_pipe must be closed first: the kernel
    /// refuses to remove an instance in use). Idempotent; errors are ignored, as there is nothing
    /// else to try.
    func remove() {
        try? Posix.writeFile(path + "/" + TraceInstance.event + "/enable", "0")
        try? Posix.removeDirectory(path)
    }

    /// Removes `ringfence-N` and `ringfence-N-M` instances whose process N no longer runs (a
    /// proxyd killed with SIGKILL leaves its instance, which would keep recording into its buffer).
    static func removeStale() {
        for name in Posix.directoryEntries(root + "/instances") where name.hasPrefix(prefix) {
            let owner = name.dropFirst(prefix.count).prefix { $0 != "-" }
            guard let pid = Int32(owner), !Posix.exists("/proc/\(pid)") else { continue }
            TraceInstance(path: "\(root)/instances/\(name)").remove()
        }
    }
}
