import SystemPackage

/// The empty pipes (`SplicePipe`) or buffers one loop's pumps lend each other. A pump holds one
/// only while bytes are in it: an idle connection (a TCPStore client between barriers) holds no
/// pipe and no buffer, so it costs its two sockets' descriptors and next to no memory, and a
/// connection's setup makes none when a pooled one is free (docs/relay-sizing.md). Pooled buffers
/// also keep the allocator's arenas from growing with every wave of connections: a 256 KiB buffer
/// per connection, freed on a different worker thread each time, left the heap larger after every
/// rendezvous. Confined to its loop.
final class IdlePool<Item> {
    /// The most items kept idle: beyond it a returned item is released.
    static var keep: Int { 64 }

    /// Idle items, each with the size it was asked for (the kernel may round a pipe's).
    private var idle: [(item: Item, size: Int)] = []
    /// The fewest idle items since the last `trim`: that many were not needed all along.
    private var fewestIdle = 0
    private let make: (Int) throws(Errno) -> Item
    private let release: (Item) -> Void

    init(make: @escaping (Int) throws(Errno) -> Item, release: @escaping (Item) -> Void) {
        self.make = make
        self.release = release
    }

    /// An empty item of `size` (what the guard's `buffer_bytes` asks), pooled or new.
    func take(size: Int) throws(Errno) -> Item {
        defer { fewestIdle = min(fewestIdle, idle.count) }
        while let (item, pooledSize) = idle.popLast() {
            // A reload may have changed `buffer_bytes`: an item of another size is not reused.
            if pooledSize == size { return item }
            release(item)
        }
        return try make(size)
    }

    /// Takes back an item its pump has emptied; `size` is the size it was taken with.
    func give(_ item: Item, size: Int) {
        guard idle.count < Self.keep else { return release(item) }
        idle.append((item, size))
    }

    /// Items kept idle now.
    var idleCount: Int { idle.count }

    /// Releases the items that stayed idle since the last trim (the oldest first: the pool hands
    /// out its newest), so that a quiet relay holds none. Called every few seconds.
    func trim() {
        let unused = min(fewestIdle, idle.count)
        for (item, _) in idle.prefix(unused) { release(item) }
        idle.removeFirst(unused)
        fewestIdle = idle.count
    }

    /// Releases every idle item (the guard stopped).
    func drain() {
        for (item, _) in idle { release(item) }
        idle = []
        fewestIdle = 0
    }

    deinit {
        drain()
    }
}
