import RingfenceSockets
import SystemPackage

/// A kernel pipe for splice(2): its two ends and the capacity the kernel gave it.
struct SplicePipe {
    let read: FileDescriptor
    let write: FileDescriptor
    let capacity: Int

    /// A new non-blocking pipe of about `capacity` bytes.
    /// - Throws: what pipe2(2) throws (EMFILE, ENFILE: out of descriptors).
    static func make(capacity: Int) throws(Errno) -> SplicePipe {
        let made = try Posix.pipe(capacity: capacity)
        return SplicePipe(read: made.read, write: made.write, capacity: made.capacity)
    }

    /// Closes both ends. close(2) releases a descriptor even when it reports an error.
    func close() {
        try? read.close()
        try? write.close()
    }
}

extension IdlePool where Item == SplicePipe {
    /// The empty pipes one loop's splice pumps lend each other.
    static func pipes() -> IdlePool<SplicePipe> {
        IdlePool(make: { (size: Int) throws(Errno) in try SplicePipe.make(capacity: size) }, release: { $0.close() })
    }
}
