import CRingfenceLinux
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A socket this process owns, from `socket()`, `accept` or `connect` until it is closed,
/// exactly once.
///
/// A `~Copyable` struct holding nothing but the descriptor, rather than a class: it costs no
/// allocation and no reference counting, and the data path goes on reading `fd` as the plain
/// `Int32` it passes to the kernel. The compiler enforces the ownership instead of a run-time
/// check: `close` and `release` consume the socket, so closing it twice, or using it after
/// closing, does not compile; moving it into an owner (`Channel`) is explicit (`consume`).
///
/// A socket dropped without `close` or `release` would leak its descriptor (an engine that is
/// down, retried every few seconds, leaked one per retry): `deinit` catches that with an
/// assertion in debug builds, which the tests run; a release build closes it there and carries on.
public struct Socket: ~Copyable, Sendable {
    /// The descriptor, for syscalls. Valid until the socket is closed or released.
    public let fd: Int32

    /// Takes ownership of an open descriptor (one accepted or handed over as an `Int32`).
    public init(adopting fd: Int32) {
        self.fd = fd
        #if DEBUG
        debugAdopted.add(1, ordering: .relaxed)
        #endif
    }

    deinit {
        assertionFailure("socket \(fd) dropped without close(): its descriptor would leak")
        Glibc.close(fd)
    }

    /// Closes the socket. `reset` sends a TCP reset rather than a FIN (SO_LINGER 0).
    public consuming func close(reset: Bool = false) {
        #if DEBUG
        debugClosed.add(1, ordering: .relaxed)
        #endif
        Posix.close(fd, reset: reset)
        discard self
    }

    /// Gives up ownership and returns the descriptor, which the caller must close: for a holder
    /// that keeps descriptors as numbers (the tests' fakes and clients; nothing in Sources does).
    public consuming func release() -> Int32 {
        let fd = fd
        discard self
        return fd
    }
}

extension Socket {
    /// A new close-on-exec socket (`socket(2)`); `type` includes flags such as SOCK_NONBLOCK.
    public static func make(family: Int32, type: Int32) throws(Errno) -> Socket {
        Socket(adopting: try Posix.must { socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0) })
    }

    /// A non-blocking, close-on-exec TCP socket of the given family.
    public static func tcp(family: Int32) throws(Errno) -> Socket {
        try make(family: family, type: Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
    }
}

#if DEBUG
private let debugAdopted = Atomic<Int>(0)
private let debugClosed = Atomic<Int>(0)

extension Socket {
    /// Sockets adopted (made, accepted, duplicated) and closed since the process started; debug
    /// builds only. A test that runs a path alone in a process (an exit test) checks with these
    /// that every socket the path made was closed, once: a second close of a `Socket` does not
    /// compile, so equal counts mean none was lost (`release` counts as neither).
    public static var debugCounts: (adopted: Int, closed: Int) {
        (debugAdopted.load(ordering: .relaxed), debugClosed.load(ordering: .relaxed))
    }
}
#endif
