import Synchronization

/// Storage of large buffers kept for reuse, so that a stream of large messages does not hand
/// each freed body back to the kernel only to fault the next one's pages in again (a profile
/// of the broker at 4 MiB messages put 16 % of its time in those page faults).
///
/// Only buffers of at least `minimumBytes` are pooled, in capacities rounded up to 64 KiB; at
/// most `limit` bytes wait in the pool (the rest is freed), so it never holds more than that
/// beyond what live buffers use. Thread-safe.
public final class StoragePool: Sendable {
    /// The process's pool: 64 MiB at most, buffers of 256 KiB and more.
    public static let shared = StoragePool(limit: 64 << 20, minimumBytes: 256 << 10)

    public let limit: Int
    public let minimumBytes: Int
    private struct State {
        /// Free buffers' addresses by capacity.
        var free: [Int: [UInt]] = [:]
        var pooledBytes = 0
    }
    private let state = Mutex(State())

    public init(limit: Int, minimumBytes: Int) {
        self.limit = limit
        self.minimumBytes = minimumBytes
    }

    /// The capacity a buffer of `count` bytes is allocated with, or nil if it is not pooled.
    public func capacity(for count: Int) -> Int? {
        guard count >= minimumBytes else { return nil }
        let unit = 64 << 10
        return (count + unit - 1) / unit * unit
    }

    /// A buffer of exactly `capacity` bytes: a pooled one, or a new one.
    func take(capacity: Int) -> UnsafeMutableRawBufferPointer {
        let address = state.withLock { state -> UInt? in
            guard let address = state.free[capacity]?.popLast() else { return nil }
            state.pooledBytes -= capacity
            return address
        }
        if let address, let pointer = UnsafeMutableRawPointer(bitPattern: address) {
            return UnsafeMutableRawBufferPointer(start: pointer, count: capacity)
        }
        return .allocate(byteCount: capacity, alignment: 16)
    }

    /// Takes `buffer` back, or frees it when the pool is full.
    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        let kept = state.withLock { state -> Bool in
            guard state.pooledBytes + buffer.count <= limit else { return false }
            state.free[buffer.count, default: []].append(UInt(bitPattern: base))
            state.pooledBytes += buffer.count
            return true
        }
        if !kept { buffer.deallocate() }
    }

    /// Bytes waiting in the pool.
    public var pooledBytes: Int { state.withLock { $0.pooledBytes } }
}
