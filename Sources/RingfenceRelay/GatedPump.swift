import RingfenceIO
import RingfenceSockets
import RingfenceTCPStore
import SystemPackage

/// Moves the client's bytes to a TCPStore server through the protocol gate: every byte read is
/// fed to `TCPStoreGate` once, and only what the gate has released is written on. Payloads stream
/// (a 4 MiB value is not held whole); a violation stops the pump before the offending field's
/// bytes leave. The buffer is bounded; a full buffer stops reading the client. It is borrowed
/// from the loop's pool (`IdlePool`) when the client's bytes arrive and given back once every
/// byte in it has been sent, so an idle connection holds none (docs/relay-sizing.md).
final class GatedPump: Pump {
    private let pool: IdlePool<UnsafeMutableRawBufferPointer>
    private let capacity: Int
    /// The borrowed buffer, while unsent bytes are in it; empty (no memory) otherwise.
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Unsent bytes are `buffer[head..<tail]`.
    private var head = 0
    private var tail = 0
    private(set) var gate: TCPStoreGate
    /// When the current partial command began, for `partial_timeout`; nil at a command boundary.
    private(set) var midCommandSince: ContinuousClock.Instant?

    init(from source: Channel, to destination: Channel, capacity: Int, gate: TCPStoreGate,
         pool: IdlePool<UnsafeMutableRawBufferPointer>) {
        self.gate = gate
        self.capacity = capacity
        self.pool = pool
        super.init(from: source, to: destination)
    }

    override func sourceReadable() -> PumpStep {
        guard !sourceEnded, !isClosed else { return .ok }
        if buffer.baseAddress == nil {
            do throws(Errno) {
                buffer = try pool.take(size: capacity)
            } catch {
                return .outOfResources("buffer: \(error)")
            }
        }
        do throws(Errno) {
            var attempts = 0
            reading: while true {
                if tail == buffer.count && head > 0 { compact() }
                guard tail < buffer.count else {
                    source.setReading(false)
                    break
                }
                if attempts == 4 {
                    source.readAgain()
                    break
                }
                attempts += 1
                switch try Posix.read(source.fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[tail...])) {
                case .done(0):
                    sourceEnded = true
                    source.setReading(false)
                    break reading
                case .done(let count):
                    if let violation = gate.feed(UnsafeRawBufferPointer(rebasing: buffer[tail..<(tail + count)])) {
                        return .violation(violation)
                    }
                    tail += count
                    onProgress()
                    if gate.isMidCommand {
                        if midCommandSince == nil { midCommandSince = .now }
                    } else {
                        midCommandSince = nil
                    }
                case .wouldBlock:
                    break reading
                }
            }
            return try flush()
        } catch {
            return .failed(error)
        }
    }

    override func flush() throws(Errno) -> PumpStep {
        guard !isClosed else { return .ok }
        // Bytes released by the gate and not yet written; at most what is buffered.
        var releasable = min(Int(gate.released - bytesForwarded), tail - head)
        while releasable > 0 {
            switch try Posix.write(destination.fd, from: UnsafeRawBufferPointer(rebasing: buffer[head..<(head + releasable)])) {
            case .done(let count):
                head += count
                releasable -= count
                bytesForwarded += UInt64(count)
            case .wouldBlock:
                return blocked()
            }
        }
        if head == tail {
            head = 0
            tail = 0
            giveBack()
        }
        // At the client's end, a command it left unfinished is never released, and never sent.
        return drained()
    }

    private func compact() {
        let count = tail - head
        if count > 0, let base = buffer.baseAddress {
            (base).copyMemory(from: base + head, byteCount: count)
        }
        head = 0
        tail = count
    }

    /// Returns the empty buffer to the pool; the next bytes borrow one again.
    private func giveBack() {
        guard buffer.baseAddress != nil else { return }
        pool.give(buffer, size: capacity)
        buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    @discardableResult
    override func close() -> Bool {
        guard super.close() else { return false }
        // Whatever is left unsent is dropped with the connection; the memory goes back to the pool.
        giveBack()
        return true
    }
}

extension IdlePool where Item == UnsafeMutableRawBufferPointer {
    /// The empty buffers one loop's gated pumps lend each other.
    static func buffers() -> IdlePool<UnsafeMutableRawBufferPointer> {
        IdlePool(make: { (size: Int) throws(Errno) in .allocate(byteCount: size, alignment: 16) }, release: { $0.deallocate() })
    }
}
