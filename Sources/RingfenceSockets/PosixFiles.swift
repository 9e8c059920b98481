import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The file-system calls the listener watch and the policy watch make (tracefs, /proc, the
/// policy file): small reads and writes of control files, directories, links, mounting tracefs.
/// Same rules as the socket wrappers: EINTR is retried, other errors are thrown as `Errno`.
extension Posix {
    /// Opens `path` read-only, close-on-exec (and non-blocking if asked); the caller closes it.
    public static func openForReading(_ path: String, nonBlocking: Bool = false) throws(Errno) -> FileDescriptor {
        let flags = O_RDONLY | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0)
        return FileDescriptor(rawValue: try must { open(path, flags) })
    }

    /// At most `limit` bytes of the file at `path` (a /proc or tracefs file: its size is unknown).
    /// `nonBlocking` for a path that could be a FIFO: one without a writer then reads as empty
    /// instead of blocking the caller.
    public static func readFile(_ path: String, limit: Int = 1 << 16, nonBlocking: Bool = false) throws(Errno) -> [UInt8] {
        let fd = try openForReading(path, nonBlocking: nonBlocking)
        defer { _ = Glibc.close(fd.rawValue) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = try must {
                chunk.withUnsafeMutableBytes { Int32(truncatingIfNeeded: Glibc.read(fd.rawValue, $0.baseAddress, $0.count)) }
            }
            if count == 0 { break }
            bytes += chunk[0..<min(Int(count), limit - bytes.count)]
        }
        return bytes
    }

    /// Writes `text` to the control file at `path` in one write (tracefs takes a value per write).
    public static func writeFile(_ path: String, _ text: String) throws(Errno) {
        let fd = try must { open(path, O_WRONLY | O_CLOEXEC | O_TRUNC) }
        defer { _ = Glibc.close(fd) }
        var bytes = Array(text.utf8)
        _ = try must { Int32(truncatingIfNeeded: Glibc.write(fd, &bytes, bytes.count)) }
    }

    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        _ = try must { mkdir(path, mode) }
    }

    public static func removeDirectory(_ path: String) throws(Errno) {
        _ = try must { rmdir(path) }
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The names in directory `path`, without "." and ".."; empty if it cannot be read.
    public static func directoryEntries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The target of the symbolic link at `path` (a /proc fd or namespace link), or nil.
    public static func readLink(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { readlink(path, $0.baseAddress!, $0.count) }
        }
        guard count >= 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// `path` with every symbolic link resolved (realpath(3)), or nil when it does not exist.
    public static func resolvedPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Mounts a pseudo file system (`type` "tracefs", say) with no source device at `target`.
    public static func mountPseudo(type: String, at target: String) throws(Errno) {
        _ = try must { mount("nodev", target, type, 0, nil) }
    }
}
