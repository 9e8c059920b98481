import RingfenceIO
import RingfenceSockets
import SystemPackage

/// Moves bytes from one socket to another through a kernel pipe with splice(2): the payload never
/// enters user space. The pipe is the direction's bounded buffer: when it is full the source is
/// not read, so a reader that stops reading stops its writer (and the relay's memory stays flat).
///
/// The pipe is borrowed from the loop's pool (`IdlePool`) when bytes arrive and given back as soon as
/// it is empty again, so an idle connection holds no pipe (docs/relay-sizing.md).
final class SplicePump: Pump {
    private let pool: IdlePool<SplicePipe>
    /// The capacity asked for (`buffer_bytes`).
    private let requested: Int
    /// The borrowed pipe, while bytes are in it (or were, until the last write).
    private var pipe: SplicePipe?
    private var inPipe = 0

    init(from source: Channel, to destination: Channel, capacity: Int, pool: IdlePool<SplicePipe>) {
        self.pool = pool
        requested = capacity
        super.init(from: source, to: destination)
    }

    override func sourceReadable() -> PumpStep {
        guard !sourceEnded, !isClosed else { return .ok }
        do throws(Errno) {
            // Read and write in turn a few times per wake-up: fewer trips through the loop per byte.
            for _ in 0..<8 {
                // Each turn borrows afresh: a turn's `flush` gives an emptied pipe back.
                let pipe: SplicePipe
                if let held = self.pipe {
                    pipe = held
                } else {
                    do throws(Errno) {
                        pipe = try pool.take(size: requested)
                    } catch {
                        return .outOfResources("pipe: \(error)")
                    }
                    self.pipe = pipe
                }
                guard inPipe < pipe.capacity, source.isReading else { return .ok }
                switch try Posix.splice(from: source.fd, to: pipe.write.rawValue, count: pipe.capacity - inPipe) {
                case .done(0):
                    sourceEnded = true
                    source.setReading(false)
                    return try flush()
                case .done(let count):
                    inPipe += count
                    onProgress()
                case .wouldBlock:
                    // The socket is drained — or the pipe's slots are full, in which case `flush`
                    // pauses reading unless it can empty the pipe: a level-triggered source cannot spin
                    // (docs/libdispatch.md §2).
                    return try flush()
                }
                let step = try flush()
                guard case .ok = step, inPipe == 0 else { return step }
            }
            // Bytes may still be queued: take another turn later, fair to the loop's other connections.
            source.readAgain()
            return .ok
        } catch {
            return .failed(error)
        }
    }

    override func flush() throws(Errno) -> PumpStep {
        guard !isClosed else { return .ok }
        while inPipe > 0, let pipe {
            switch try Posix.splice(from: pipe.read.rawValue, to: destination.fd, count: inPipe) {
            case .done(let count):
                inPipe -= count
                bytesForwarded += UInt64(count)
            case .wouldBlock:
                return blocked()
            }
        }
        // Empty: back to the pool until bytes come again.
        if let pipe {
            self.pipe = nil
            pool.give(pipe, size: requested)
        }
        return drained()
    }

    @discardableResult
    override func close() -> Bool {
        guard super.close() else { return false }
        // A pipe still held may have bytes in it (or a failed splice left it unknown): not pooled.
        pipe?.close()
        pipe = nil
        return true
    }
}
