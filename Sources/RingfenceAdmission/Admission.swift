import RingfenceAddresses
import RingfenceSockets
import RingfenceStatus
import Synchronization

/// A guard's admission check at accept, before a byte is read: the allowlist (the same address
/// set the kernel fence loads: one policy, two checks that agree), connection caps per peer and
/// in total, and a per-peer accept rate (a token bucket). Shared by the guard's loops; used by
/// the relay and the broker alike.
///
/// It also keeps the guard's strike ledger (`StrikeLedger`): every refusal at admission but
/// `not-allowed` is a strike, and the guard's sessions add theirs (`strike(_:reason:)`:
/// protocol violations, timeouts, evictions). A peer that reaches `Limits.strikes` is handed
/// once to `onBan`, whose owner (the daemon) bans it in the kernel for new connections to
/// this guard, so that a reconnect storm stops costing an accept and a close per attempt.
public final class Admission: Sendable {
    /// Why a connection was refused; the raw value is what the log says.
    public typealias Denial = DenialReason

    /// The caps and the accept rate a guard admits under.
    public struct Limits: Hashable, Sendable {
        public var maxConnections: Int
        public var maxConnectionsPerPeer: Int
        public var acceptRatePerPeer: Int
        /// When strikes ban a peer; off unless given.
        public var strikes: StrikeLedger.Rules

        public init(
            maxConnections: Int, maxConnectionsPerPeer: Int, acceptRatePerPeer: Int, strikes: StrikeLedger.Rules = .off
        ) {
            self.maxConnections = maxConnections
            self.maxConnectionsPerPeer = maxConnectionsPerPeer
            self.acceptRatePerPeer = acceptRatePerPeer
            self.strikes = strikes
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
        var ledger: StrikeLedger
        var bansReported: UInt64 = 0
        var onBan: (@Sendable (StrikeLedger.Ban) -> Void)?
    }

    private let state: Mutex<State>

    public init(allow: AddressSet, limits: Limits) {
        state = Mutex(State(allow: allow, limits: limits, ledger: StrikeLedger(rules: limits.strikes)))
    }

    /// The caps, rate and strike rules in force; a reload may change them, for the next
    /// accepts (and strikes) on. Strikes already counted stay.
    public var limits: Limits {
        get { state.withLock { $0.limits } }
        set {
            state.withLock {
                $0.limits = newValue
                $0.ledger.rules = newValue.strikes
            }
        }
    }

    /// Called once for each peer that reaches the strike threshold, on the thread that counted
    /// the last strike (a guard's loop), outside the lock: hand it on, do not block.
    public var onBan: (@Sendable (StrikeLedger.Ban) -> Void)? {
        get { state.withLock { $0.onBan } }
        set { state.withLock { $0.onBan = newValue } }
    }

    /// Peers handed to `onBan` since the guard started.
    public var bansReported: UInt64 { state.withLock { $0.bansReported } }

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
        let (denial, ban) = state.withLock { state -> (Denial?, Report?) in
            let denial = Self.admit(peer, now: now, &state)
            guard let denial else {
                state.accepted += 1
                return (nil, nil)
            }
            state.denied[denial, default: 0] += 1
            return (denial, StrikeReason(denial).flatMap { Self.strike(peer, reason: $0, now: now, &state) })
        }
        if let ban { ban.report(ban.ban) }
        return denial
    }

    /// Counts a strike against `peer` for something its connection did (a protocol violation,
    /// a timeout, an eviction); with enough of them, `onBan` hears of it.
    public func strike(_ peer: IPAddress, reason: StrikeReason, now: ContinuousClock.Instant = .now) {
        let ban = state.withLock { Self.strike(peer, reason: reason, now: now, &$0) }
        if let ban { ban.report(ban.ban) }
    }

    /// Forgets `peer`'s strikes and ban (`proxyctl unban`), so that it is counted afresh.
    public func forgetStrikes(of peer: IPAddress) {
        state.withLock { $0.ledger.forget(peer) }
    }

    /// A ban to hand to `onBan`, once out of the lock.
    private struct Report {
        var ban: StrikeLedger.Ban
        var report: @Sendable (StrikeLedger.Ban) -> Void
    }

    private static func strike(_ peer: IPAddress, reason: StrikeReason, now: ContinuousClock.Instant, _ state: inout State) -> Report? {
        guard let ban = state.ledger.strike(peer, reason: reason, now: now) else { return nil }
        state.bansReported += 1
        return state.onBan.map { Report(ban: ban, report: $0) }
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

    /// Forgets rate buckets that have refilled, and strikes and bans that have run out, so that a
    /// scan from many addresses cannot grow the tables without bound.
    public func prune(now: ContinuousClock.Instant = .now) {
        let refillTime = Duration.seconds(1)
        state.withLock { state in
            state.buckets = state.buckets.filter { now - $0.value.refilledAt < refillTime }
            state.ledger.prune(now: now)
        }
    }

    /// Connections admitted and not yet released.
    public var connectionCount: Int { state.withLock { $0.total } }
}
