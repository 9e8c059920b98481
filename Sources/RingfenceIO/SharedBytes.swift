/// Immutable bytes shared by reference: what a fan-out queues on many connections at once
/// without a copy per connection.
///
/// A buffer is filled once by its maker (`init(count:)` then `withUnsafeMutableBytes`, for
/// example a large frame body read straight from a socket into place) and only read after it
/// has been handed to a connection. Unlike `[UInt8]`, it can be allocated without being zeroed
/// and filled across several reads.
public final class SharedBytes: @unchecked Sendable {
    public let count: Int
    private let storage: UnsafeMutableRawBufferPointer
    /// Where the storage goes back to, for large buffers.
    private let pool: StoragePool?

    /// Uninitialized storage of `count` bytes, for the maker to fill; large buffers take their
    /// storage from `pool` and give it back when released.
    public init(count: Int, pool: StoragePool? = nil) {
        self.count = count
        if let pool, let capacity = pool.capacity(for: count) {
            storage = pool.take(capacity: capacity)
            self.pool = pool
        } else {
            storage = .allocate(byteCount: max(count, 1), alignment: 16)
            self.pool = nil
        }
    }

    /// A copy of `bytes`.
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]).copyBytes(from: bytes)
    }

    deinit {
        if let pool { pool.give(storage) } else { storage.deallocate() }
    }

    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// For the maker only, before the bytes are shared.
    public func withUnsafeMutableBytes<Result>(_ body: (UnsafeMutableRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// A copy, as an array.
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Whether the bytes start with `prefix`.
    public func starts(with prefix: [UInt8]) -> Bool {
        guard prefix.count <= count else { return false }
        return withUnsafeBytes { bytes in
            prefix.withUnsafeBytes { p in p.count == 0 || memcmp(bytes.baseAddress!, p.baseAddress!, p.count) == 0 }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
