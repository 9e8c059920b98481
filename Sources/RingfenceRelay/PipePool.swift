import RingfenceSockets
import SystemPackage

/// A kernel pipe for splice(2): its two ends and the capacity the kernel gave it.
struct SplicePipe {
    let read: FileDescriptor
    let write: FileDescriptor
    let capacity: Int

    /// Closes both ends. close(2) releases a descriptor even when it reports an error.
    func close() {
        try? read.close()
        try? write.close()
    }
}

/// The empty pipes one loop's splice pumps lend each other. A pump holds a pipe only while bytes
/// are in it: an idle connection (a TCPStore client between barriers) holds none, so a relayed
/// connection costs its two sockets' descriptors and not six, and a connection's setup makes no
/// pipe at all when a pooled one is free (docs/relay-sizing.md). Confined to its loop.
final class PipePool {
    /// The most pipes kept idle: beyond it a returned pipe is closed.
    static let keep = 64

    /// Idle pipes, each with the capacity it was asked for (the kernel may round it).
    private var idle: [(pipe: SplicePipe, requested: Int)] = []
    /// The fewest idle pipes since the last `trim`: that many were not needed all along.
    private var fewestIdle = 0

    /// An empty pipe of `capacity` (what the guard's `buffer_bytes` asks), pooled or new.
    /// - Throws: what pipe2(2) throws (EMFILE, ENFILE: out of descriptors).
    func take(capacity: Int) throws(Errno) -> SplicePipe {
        defer { fewestIdle = min(fewestIdle, idle.count) }
        while let (pipe, requested) = idle.popLast() {
            // A reload may have changed `buffer_bytes`: a pipe of another size is not reused.
            if requested == capacity { return pipe }
            pipe.close()
        }
        let made = try Posix.pipe(capacity: capacity)
        return SplicePipe(read: made.read, write: made.write, capacity: made.capacity)
    }

    /// Takes back a pipe its pump has emptied; `requested` is the capacity it was taken with.
    func give(_ pipe: SplicePipe, requested: Int) {
        guard idle.count < Self.keep else { return pipe.close() }
        idle.append((pipe, requested))
    }

    /// Pipes kept idle now.
    var idleCount: Int { idle.count }

    /// Closes the pipes that stayed idle since the last trim (the oldest first: the pool hands
    /// out its newest), so that a quiet relay holds no pipes. Called every few seconds.
    func trim() {
        let unused = min(fewestIdle, idle.count)
        for (pipe, _) in idle.prefix(unused) { pipe.close() }
        idle.removeFirst(unused)
        fewestIdle = idle.count
    }

    /// Closes every idle pipe (the guard stopped).
    func drain() {
        for (pipe, _) in idle { pipe.close() }
        idle = []
        fewestIdle = 0
    }

    deinit {
        drain()
    }
}
