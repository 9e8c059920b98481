import RingfenceIO
import RingfenceSockets
import SystemPackage

/// Moves bytes from one socket to another through a kernel pipe with splice(2): the payload never
/// enters user space. The pipe is the direction's bounded buffer: when it is full the source is
/// not read, so a reader that stops reading stops its writer (and the relay's memory stays flat).
final class SplicePump: Pump {
    /// The pipe's ends: plain descriptors, closed once in `close`.
    private let pipeRead: FileDescriptor
    private let pipeWrite: FileDescriptor
    private let capacity: Int
    private var inPipe = 0

    init(from source: Channel, to destination: Channel, capacity: Int) throws(Errno) {
        let pipe = try Posix.pipe(capacity: capacity)
        pipeRead = pipe.read
        pipeWrite = pipe.write
        self.capacity = pipe.capacity
        super.init(from: source, to: destination)
    }

    override func sourceReadable() -> PumpStep {
        guard !sourceEnded, !isClosed else { return .ok }
        do throws(Errno) {
            // Read and write in turn a few times per wake-up: fewer trips through the loop per byte.
            for _ in 0..<8 {
                guard inPipe < capacity, source.isReading else { return .ok }
                switch try Posix.splice(from: source.fd, to: pipeWrite.rawValue, count: capacity - inPipe) {
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
        while inPipe > 0 {
            switch try Posix.splice(from: pipeRead.rawValue, to: destination.fd, count: inPipe) {
            case .done(let count):
                inPipe -= count
                bytesForwarded += UInt64(count)
            case .wouldBlock:
                return blocked()
            }
        }
        return drained()
    }

    @discardableResult
    override func close() -> Bool {
        guard super.close() else { return false }
        // close(2) releases the descriptor even when it reports an error: nothing to retry.
        try? pipeRead.close()
        try? pipeWrite.close()
        return true
    }
}
