import Testing

@testable import RingfenceIO

/// Large buffers' storage is reused, small ones are not pooled, and the pool stays within its limit.
@Suite struct StoragePoolTests {
    @Test func aReleasedLargeBufferIsReusedAndTheLimitHolds() {
        let pool = StoragePool(limit: 1 << 20, minimumBytes: 256 << 10)
        #expect(pool.capacity(for: 1000) == nil)
        #expect(pool.capacity(for: 300 << 10) == 320 << 10)
        var first: SharedBytes? = SharedBytes(count: 300 << 10, pool: pool)
        let address = first!.withUnsafeBytes { $0.baseAddress }
        first = nil
        #expect(pool.pooledBytes == 320 << 10)
        let second = SharedBytes(count: 310 << 10, pool: pool)
        #expect(second.withUnsafeBytes { $0.baseAddress } == address, "the same capacity class reuses the storage")
        #expect(second.count == 310 << 10 && pool.pooledBytes == 0)
        // Four 320 KiB buffers released into a 1 MiB pool: three are kept, the fourth freed.
        var many: [SharedBytes] = (0..<4).map { _ in SharedBytes(count: 300 << 10, pool: pool) }
        many.removeAll()
        #expect(pool.pooledBytes == 3 * (320 << 10))
        _ = SharedBytes(count: 10, pool: pool)
        #expect(pool.pooledBytes == 3 * (320 << 10), "small buffers never touch the pool")
    }
}
