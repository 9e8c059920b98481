import RingfenceAddresses
import RingfenceSockets
import RingfenceStatus
import Synchronization

/// A guard's admission check at accept, before a byte is read: the allowlist (the same address
/// set the kernel fence loads: one policy, two checks that agree), connection caps per peer and
/// in total, and a per-peer accept rate (a token bucket). Shared by the guard's loops; used by
/// the relay and the broker alike.
public final class Admission: Sendable {
    /// Why a connection was refused; the raw value is what the log says.
    public typealias Denial = DenialReason

    /// The caps and the accept rate a guard admits under.
    public struct Limits: Hashable, Sendable {
        public var maxConnections: Int
        public var maxConnectionsPerPeer: Int
        public var acceptRatePerPeer: Int

        public init(maxConnections: Int, maxConnectionsPerPeer: Int, acceptRatePerPeer: Int) {
            self.maxConnections = maxConnections
            self.maxConnectionsPerPeer = maxConnectionsPerPeer
            self.acceptRatePerPeer = acceptRatePerPeer
        }
    }

    private struct Bucket {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
    }

    private struct State {
        var allow: AddressSet
        var audit = false
        var total = 0
        var perPeer: [IPAddress: Int] = [:]
        var buckets: [IPAddress: Bucket] = [:]
        var limits: Limits
        var accepted: UInt64 = 0
        var denied: [Denial: UInt64] = [:]
    }

    private let state: Mutex<State>

    public init(allow: AddressSet, limits: Limits) {
        state = Mutex(State(allow: allow, limits: limits))
    }

    /// The caps and rate in force; a reload may change them, for the next accepts on.
    public var limits: Limits {
        get { state.withLock { $0.limits } }
        set { state.withLock { $0.limits = newValue } }
    }

    /// Connections admitted and refused (by reason) since the guard started.
    public var totals: (accepted: UInt64, denied: [Denial: UInt64]) {
        state.withLock { ($0.accepted, $0.denied) }
    }

    /// The allowlist in force.
    public var allow: AddressSet {
        get { state.withLock { $0.allow } }
        set { state.withLock { $0.allow = newValue } }
    }

    /// Audit mode (`mode = "audit"`): a peer outside the allowlist is admitted, as the kernel
    /// fence lets it through and records it; caps and rates still apply.
    public var audit: Bool {
        get { state.withLock { $0.audit } }
        set { state.withLock { $0.audit = newValue } }
    }

    /// Admits `peer` (counting its connection) or says why not.
    public func admit(_ peer: IPAddress, now: ContinuousClock.Instant = .now) -> Denial? {
        state.withLock { state in
            let denial = Self.admit(peer, now: now, &state)
            if let denial {
                state.denied[denial, default: 0] += 1
            } else {
                state.accepted += 1
            }
            return denial
        }
    }

    private static func admit(_ peer: IPAddress, now: ContinuousClock.Instant, _ state: inout State) -> Denial? {
        let limits = state.limits
        let rate = Double(limits.acceptRatePerPeer)
        guard state.audit || state.allow.contains(peer) else { return .notAllowed }
        var bucket = state.buckets[peer] ?? Bucket(tokens: rate, refilledAt: now)
        bucket.tokens = min(rate, bucket.tokens + (now - bucket.refilledAt).inSeconds * rate)
        bucket.refilledAt = now
        defer { state.buckets[peer] = bucket }
        guard bucket.tokens >= 1 else { return .rateLimit }
        bucket.tokens -= 1
        guard state.total < limits.maxConnections else { return .totalLimit }
        guard state.perPeer[peer, default: 0] < limits.maxConnectionsPerPeer else { return .peerLimit }
        state.total += 1
        state.perPeer[peer, default: 0] += 1
        return nil
    }

    /// Gives back an admitted connection's place.
    public func release(_ peer: IPAddress) {
        state.withLock { state in
            state.total -= 1
            let left = state.perPeer[peer, default: 1] - 1
            state.perPeer[peer] = left > 0 ? left : nil
        }
    }

    /// Forgets rate buckets that have refilled, so that a scan from many addresses cannot grow
    /// the table without bound.
    public func prune(now: ContinuousClock.Instant = .now) {
        let refillTime = Duration.seconds(1)
        state.withLock { state in
            state.buckets = state.buckets.filter { now - $0.value.refilledAt < refillTime }
        }
    }

    /// Connections admitted and not yet released.
    public var connectionCount: Int { state.withLock { $0.total } }
}
