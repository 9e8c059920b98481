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
}

/// One direction of a relayed connection: from `source`'s read side to `destination`'s write
/// side through a bounded buffer, with backpressure (a full buffer stops reading the source).
///
/// A pump never waits for its read source to fire for bytes that may already be queued: once a
/// socket has seen a hang-up, libdispatch's epoll backend reports it once and then stops watching
/// the descriptor, so bytes left behind (by backpressure, or by the per-wake-up bound) would
/// never be read. Whenever a pump stops reading with bytes possibly queued and later can take
/// more, it asks for another read attempt through `kick`, which the session schedules on the loop.
protocol Pump: AnyObject {
    /// Bytes delivered to the destination so far.
    var bytesForwarded: UInt64 { get }
    /// Schedules a read attempt on the loop (set by the session).
    var kick: () -> Void { get set }
    func start()
    func sourceReadable() -> PumpStep
    func destinationWritable() -> PumpStep
    /// Releases the pump's own descriptors or memory.
    func close()
}
