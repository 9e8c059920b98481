import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An inotify instance (inotify(7)): a non-blocking, close-on-exec descriptor that reports
/// changes to the directories it watches. The thin wrapper the policy watch uses; the caller
/// owns the descriptor (closes it with `close()`, after cancelling any Dispatch source on it:
/// docs/libdispatch.md §5).
public struct Inotify: Sendable {
    /// The inotify descriptor, for a Dispatch read source.
    public let descriptor: Int32

    /// What changes a directory watch reports: an entry created, written and closed, renamed in
    /// or out, deleted, or its attributes changed; and the directory itself deleted or moved.
    public static let directoryChanges: UInt32 = UInt32(
        IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF
            | IN_MOVE_SELF)
        | UInt32(IN_ONLYDIR)

    /// Opens a new instance.
    /// - Throws: `Errno` (EMFILE when the per-user instance limit is reached).
    public init() throws(Errno) {
        descriptor = try Posix.must { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
    }

    /// Starts watching `path` for `mask`; the watch descriptor, which events name.
    public func watch(_ path: String, mask: UInt32 = Inotify.directoryChanges) throws(Errno) -> Int32 {
        try Posix.must { inotify_add_watch(descriptor, path, mask) }
    }

    /// Stops a watch; one the kernel already dropped (its directory deleted) is no error.
    public func unwatch(_ watch: Int32) {
        _ = inotify_rm_watch(descriptor, watch)
    }

    /// Reads and counts every event queued now (their details do not matter to a watch that
    /// looks at the file itself afterwards). 0 when none were queued.
    public func drain() -> Int {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var events = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return events }
            events += Self.eventCount(buffer[0..<count])
        }
    }

    /// The number of `struct inotify_event` records in `bytes` (each a 16-byte header and its
    /// `len` bytes of name).
    public static func eventCount(_ bytes: ArraySlice<UInt8>) -> Int {
        var offset = bytes.startIndex
        var events = 0
        while bytes.endIndex - offset >= 16 {
            let nameLength = (12..<16).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * ($1 - 12)) }
            offset += 16 + nameLength
            events += 1
        }
        return events
    }

    /// Closes the descriptor.
    public func close() {
        _ = Glibc.close(descriptor)
    }
}
