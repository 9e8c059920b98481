import RingfenceSockets

/// Finds the processes behind sockets by reading /proc (docs/listeners.md §4). Processes come and
/// go while it reads: anything that vanishes midway is skipped, never an error.
public enum ProcessTable {
    /// The owners of the sockets with these inodes: one scan of every /proc/PID/fd, ended early
    /// once all are found. Costly on a busy host (a readlink per descriptor): call it only for
    /// inodes not seen before. A socket shared by several processes gets the first found.
    /// - Parameter preferring: processes to look in first: those that owned listeners before (an
    ///   engine opens many), so that the scan usually ends after one of them (docs/listeners.md §4).
    public static func owners(of inodes: Set<UInt64>, preferring: [Int32] = []) -> [UInt64: SocketOwner] {
        var found: [UInt64: SocketOwner] = [:]
        guard !inodes.isEmpty else { return found }
        let rest = Posix.directoryEntries("/proc").compactMap { Int32($0) }.filter { $0 > 0 && !preferring.contains($0) }
        for pid in preferring + rest {
            for fd in Posix.directoryEntries("/proc/\(pid)/fd") {
                guard let inode = socketInode(Posix.readLink("/proc/\(pid)/fd/\(fd)")),
                      inodes.contains(inode), found[inode] == nil,
                      let owner = owner(pid: pid)
                else { continue }
                found[inode] = owner
                if found.count == inodes.count { return found }
            }
        }
        return found
    }

    /// The process of `pid`, which may be a thread id (the tracepoint's `common_pid` is the
    /// listening thread): reported under its thread group id, the pid users know. Nil if it is gone.
    public static func owner(pid: Int32) -> SocketOwner? {
        guard pid > 0, let status = try? Posix.readFile("/proc/\(pid)/status", limit: 4096) else { return nil }
        let group = threadGroup(status: status) ?? pid
        guard let raw = try? Posix.readFile("/proc/\(group)/cmdline", limit: 4096) else { return nil }
        var line = commandLine(raw)
        if line.isEmpty, let comm = try? Posix.readFile("/proc/\(group)/comm", limit: 64) {
            line = "[" + commandLine(comm) + "]"  // A kernel thread or a zombie: ps shows its name so.
        }
        return SocketOwner(pid: group, commandLine: line)
    }

    /// `/proc/PID/cmdline`'s arguments joined with spaces, trimmed.
    static func commandLine(_ raw: [UInt8]) -> String {
        let text = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// The `Tgid:` line of `/proc/PID/status`. On the bytes, without making a string of each
    /// line: this is on the way from listen(2) to a live redirect.
    static func threadGroup(status: [UInt8]) -> Int32? {
        let key = Array("\nTgid:".utf8)
        guard status.count > key.count else { return nil }
        var index = 0
        search: while index + key.count <= status.count {
            for offset in 0..<key.count where status[index + offset] != key[offset] {
                index += 1
                continue search
            }
            var value: Int32 = 0
            var digits = 0
            var cursor = index + key.count
            while cursor < status.count, status[cursor] == 0x20 || status[cursor] == 0x09 { cursor += 1 }
            while cursor < status.count, (0x30...0x39).contains(status[cursor]), digits < 10 {
                value = value &* 10 &+ Int32(status[cursor] - 0x30)
                digits += 1
                cursor += 1
            }
            return digits > 0 ? value : nil
        }
        return nil
    }

    /// The inode of a `socket:[N]` link target.
    static func socketInode(_ link: String?) -> UInt64? {
        guard let link, link.hasPrefix("socket:["), link.hasSuffix("]") else { return nil }
        return UInt64(link.dropFirst(8).dropLast())
    }
}
