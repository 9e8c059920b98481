import RingfenceSockets
import Testing

@testable import RingfenceRelay

/// A loop's pool of empty pipes or buffers: reused while their size is the one asked for,
/// bounded, trimmed of what was not needed, and released when drained.
@Suite struct IdlePoolTests {
    @Test func aPipeGivenBackIsTakenAgainAndOneOfAnotherSizeIsClosed() throws {
        let pool = IdlePool<SplicePipe>.pipes()
        let first = try pool.take(size: 64 << 10)
        #expect(first.capacity >= 64 << 10)
        pool.give(first, size: 64 << 10)
        let again = try pool.take(size: 64 << 10)
        #expect(again.read == first.read && again.write == first.write)
        pool.give(again, size: 64 << 10)
        // A reload changed buffer_bytes: the pooled pipe is closed, a new one made.
        let other = try pool.take(size: 128 << 10)
        #expect(other.capacity >= 128 << 10)
        other.close()
    }

    @Test func thePoolKeepsAtMostItsBoundAndDrainEmptiesIt() throws {
        let pool = IdlePool<SplicePipe>.pipes()
        let pipes = try (0..<(IdlePool<SplicePipe>.keep + 2)).map { _ in try pool.take(size: 4096) }
        for pipe in pipes { pool.give(pipe, size: 4096) }
        // The two beyond the bound were closed on the spot. (Whether a descriptor number is still
        // open is not asked: tests running alongside may be handed a freed number at once.)
        #expect(pool.idleCount == IdlePool<SplicePipe>.keep)
        pool.drain()
        #expect(pool.idleCount == 0)
    }

    @Test func trimClosesOnlyThePipesThatStayedIdleSinceTheLastTrim() throws {
        let pool = IdlePool<SplicePipe>.pipes()
        let pipes = try (0..<4).map { _ in try pool.take(size: 4096) }
        for pipe in pipes { pool.give(pipe, size: 4096) }
        pool.trim()
        // None were idle through a whole round before the first trim: all four are kept.
        #expect(pool.idleCount == 4)
        // One round in which at most three were idle at once: one was needed, three were not.
        let taken = try pool.take(size: 4096)
        pool.give(taken, size: 4096)
        pool.trim()
        #expect(pool.idleCount == 1)
        pool.trim()
        #expect(pool.idleCount == 0)
    }

    @Test func buffersAreLentAndReleasedLikePipes() throws {
        let pool = IdlePool<UnsafeMutableRawBufferPointer>.buffers()
        let buffer = try pool.take(size: 64 << 10)
        #expect(buffer.count == 64 << 10)
        pool.give(buffer, size: 64 << 10)
        #expect(try pool.take(size: 64 << 10).baseAddress == buffer.baseAddress)
        pool.give(buffer, size: 64 << 10)
        pool.drain()
        #expect(pool.idleCount == 0)
    }
}
