import RingfenceAddresses
import RingfenceStatus

/// Counts strikes per peer (`StrikeReason`: refusals at admission, protocol violations,
/// timeouts, evictions) and says when a peer reaches `Rules.banAfter` strikes within
/// `Rules.window` (or strikes for a reason that `bansAtOnce`): once, and then not again for
/// that peer until its ban (`Rules.banFor`) has run out, so that a peer already banned in the kernel is not reported again by the
/// connections it still holds. Pure: the caller passes the time.
///
/// Memory is bounded: each peer keeps at most `banAfter` instants, and at most `maxPeers`
/// peers are tracked (strikes of further peers are not counted until `prune` makes room).
/// Only peers the allowlist admits can strike at all.
public struct StrikeLedger: Sendable {
    /// When strikes turn into a ban: `banAfter` strikes within `window` ban the peer for
    /// `banFor`. `banAfter = 0` turns banning off.
    public struct Rules: Hashable, Sendable {
        public var banAfter: Int
        public var window: Duration
        public var banFor: Duration

        public init(banAfter: Int, window: Duration, banFor: Duration) {
            self.banAfter = banAfter
            self.window = window
            self.banFor = banFor
        }

        /// No bans.
        public static let off = Rules(banAfter: 0, window: .seconds(10), banFor: .seconds(60))
        public var isOn: Bool { banAfter > 0 }
    }

    /// A peer that just reached the threshold: ban it for `duration`.
    public struct Ban: Hashable, Sendable {
        public var peer: IPAddress
        /// The strike that reached the threshold.
        public var reason: StrikeReason
        /// Strikes within the window (the threshold).
        public var strikes: Int
        public var duration: Duration
    }

    public static let maxPeers = 16_384

    public var rules: Rules
    /// Each peer's recent strikes, oldest first, at most `rules.banAfter`.
    private var recent: [IPAddress: [ContinuousClock.Instant]] = [:]
    /// Peers reported, until their ban runs out.
    private var banned: [IPAddress: ContinuousClock.Instant] = [:]

    public init(rules: Rules) { self.rules = rules }

    /// Counts a strike against `peer`; returns the ban when this one reaches the threshold.
    public mutating func strike(_ peer: IPAddress, reason: StrikeReason, now: ContinuousClock.Instant) -> Ban? {
        guard rules.isOn else { return nil }
        if let until = banned[peer] {
            guard now >= until else { return nil }
            banned[peer] = nil
        }
        var times = recent[peer] ?? []
        guard !times.isEmpty || recent.count < Self.maxPeers else { return nil }
        times.removeAll { now - $0 >= rules.window }
        times.append(now)
        if times.count > rules.banAfter { times.removeFirst(times.count - rules.banAfter) }
        guard times.count >= rules.banAfter || reason.bansAtOnce else {
            recent[peer] = times
            return nil
        }
        recent[peer] = nil
        banned[peer] = now + rules.banFor
        return Ban(peer: peer, reason: reason, strikes: times.count, duration: rules.banFor)
    }

    /// Forgets `peer`'s strikes and ban (`proxyctl unban`): it starts afresh.
    public mutating func forget(_ peer: IPAddress) {
        recent[peer] = nil
        banned[peer] = nil
    }

    /// Drops strikes older than the window and bans that have run out.
    public mutating func prune(now: ContinuousClock.Instant) {
        let window = rules.window
        recent = recent.compactMapValues { times in
            let kept = times.filter { now - $0 < window }
            return kept.isEmpty ? nil : kept
        }
        banned = banned.filter { now < $0.value }
    }

    /// Peers with strikes counted now (for tests and bounds).
    public var trackedPeers: Int { recent.count }
}
