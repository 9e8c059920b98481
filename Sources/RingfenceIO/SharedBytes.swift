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

    /// Uninitialized storage of `count` bytes, for the maker to fill.
    public init(count: Int) {
        self.count = count
        storage = .allocate(byteCount: max(count, 1), alignment: 16)
    }

    /// A copy of `bytes`.
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]).copyBytes(from: bytes)
    }

    deinit { storage.deallocate() }

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
