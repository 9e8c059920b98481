#if canImport(Glibc)
import Glibc
#endif

/// Reads a policy file for `Policy.load(path:)`, refusing what is not one before reading it:
/// anything but a regular file (a FIFO would block the reader until someone writes to it; a
/// directory or a device is a mistake) and a file over `maxBytes`. The bound keeps a mistaken
/// or hostile path from costing the daemon a reload's worth of memory per byte
/// (docs/reliability.md, "Bad input at the edges").
enum PolicyFile {
    /// 64 MiB: a policy of a million CIDRs is about 20 MB of TOML, so no real policy comes near.
    static let maxBytes = 64 << 20

    /// Why a policy file was not read; `description` is the diagnostic's message.
    enum Problem: Error, Equatable, CustomStringConvertible {
        /// open, fstat or read failed (`errno`): no such file, permission denied, a symlink loop…
        case cannotRead(errno: Int32)
        /// Not a regular file: `kind` says what it is.
        case notRegular(kind: String)
        /// Larger than `limit` bytes (`size` as fstat saw it, or read past the limit).
        case tooLarge(size: Int, limit: Int)

        var description: String {
            switch self {
            case .cannotRead(let code): "cannot read: \(String(cString: strerror(code)))"
            case .notRegular(let kind): "cannot read: \(kind), not a regular file"
            case .tooLarge(let size, let limit):
                "cannot read: \(size) bytes, over the limit of \(limit) bytes (\(limit >> 20) MiB) for a policy file"
            }
        }
    }

    /// The file's text (invalid UTF-8 replaced, as TOML then refuses it), or why not.
    static func read(_ path: String, limit: Int = maxBytes) -> Result<String, Problem> {
        // Non-blocking so that opening a FIFO without a writer returns at once; fstat then
        // refuses it.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(.cannotRead(errno: errno)) }
        defer { _ = close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.cannotRead(errno: errno)) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG else { return .failure(.notRegular(kind: kindName(type))) }
        guard Int(info.st_size) <= limit else { return .failure(.tooLarge(size: Int(info.st_size), limit: limit)) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.cannotRead(errno: errno))
            }
            if count == 0 { break }
            // The file grew after fstat: still bounded.
            guard bytes.count + count <= limit else { return .failure(.tooLarge(size: bytes.count + count, limit: limit)) }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    private static func kindName(_ type: mode_t) -> String {
        switch type {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "not a file"
        }
    }
}
