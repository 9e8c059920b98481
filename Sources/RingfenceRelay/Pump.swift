import RingfenceIO
import RingfenceSockets
import RingfenceTCPStore
import SystemPackage

/// What moving bytes in one direction of a relayed connection came to.
enum PumpStep {
    /// Keep going.
    case ok
    /// The source ended and everything was delivered; the destination's write side is shut.
    case finished
    /// A socket error on either side (a reset, a broken pipe).
    case failed(Errno)
    /// The TCPStore gate refused the client's bytes.
    case violation(TCPStoreViolation)
    /// A pipe could not be had (out of descriptors or memory).
    case outOfResources(String)
}

/// One direction of a relayed connection: from `source`'s read side to `destination`'s write
/// side through a bounded buffer, with backpressure (a full buffer stops reading the source).
///
/// A pump never waits for its read source to fire for bytes that may already be queued (once a
/// socket has seen a hang-up, libdispatch reports it once and then stops watching the
/// descriptor): turning its source's reading back on schedules a read attempt, and a pump that
/// stops at its per-wake-up bound asks for another with `source.readAgain()`. Both are the
/// `Channel`'s, shared with `Connection` (see `Channel`, and docs/libdispatch.md §3).
///
/// Pumps stay a small class hierarchy apart from `Connection`: a pump joins two sockets, and the
/// spliced one keeps the payload in a kernel pipe (see `Connection` for why they are not one type).
class Pump {
    let source: Channel
    let destination: Channel
    /// The source has ended (read returned 0).
    var sourceEnded = false
    private var shutDown = false
    /// Bytes delivered to the destination so far.
    var bytesForwarded: UInt64 = 0
    /// Called as bytes arrive, for activity tracking (set by the session).
    var onProgress: () -> Void = {}

    init(from source: Channel, to destination: Channel) {
        self.source = source
        self.destination = destination
    }

    /// Starts reading the source (which schedules the first read attempt).
    func start() {
        source.setReading(true)
    }

    /// Reads what the source has and passes it on. Overridden.
    func sourceReadable() -> PumpStep { .ok }

    func destinationWritable() -> PumpStep {
        do throws(Errno) {
            return try flush()
        } catch {
            return .failed(error)
        }
    }

    /// Writes what may be written. Overridden; ends with `blocked()` or `drained()`.
    func flush() throws(Errno) -> PumpStep { drained() }

    /// The destination takes no more: wait for it to become writable, and read no more meanwhile.
    func blocked() -> PumpStep {
        destination.setWriting(true)
        source.setReading(false)
        return .ok
    }

    /// Everything read has been written: read on (turning reading back on schedules a fresh
    /// attempt, in case bytes were queued while it was paused), or, once the source has ended,
    /// shut the destination's write side.
    func drained() -> PumpStep {
        destination.setWriting(false)
        if !sourceEnded {
            source.setReading(true)
            return .ok
        }
        if !shutDown {
            shutDown = true
            Posix.shutdownWrite(destination.fd)
        }
        return .finished
    }

    /// Releases the pump's own descriptors or memory: subclasses call `super.close()` first and
    /// release only if it returns true, so that nothing is released twice.
    @discardableResult
    func close() -> Bool {
        guard !isClosed else { return false }
        isClosed = true
        return true
    }

    /// Whether `close` has run; a closed pump moves no more bytes.
    private(set) var isClosed = false
}
