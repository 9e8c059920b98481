import RingfenceAddresses
import RingfencePolicy

/// The policy's peer names and what they resolve to: the state machine behind `dns:NAME` and
/// `lws:group`, pure (the daemon runs the lookups and the timer, and applies what changes).
///
/// The rules (docs/peer-names.md): a name is asked again every `refresh`, or after its
/// records' TTL when that is shorter (at least `minimumInterval`), and soon after a failure
/// (`retry`); a name that stops resolving keeps its last addresses (`stale`): a DNS hiccup never
/// empties or widens the fence; a name that never resolved admits nobody (`unresolved`).
public struct PeerNameTable: Sendable {
    /// What one finished lookup changed.
    public enum Outcome: Hashable, Sendable {
        /// The addresses in force changed (the first resolution included): apply them.
        case changed(added: [IPAddress], removed: [IPAddress])
        /// The same addresses as before, confirmed (a stale name recovered if `recovered`).
        case confirmed(recovered: Bool)
        /// The lookup failed; the last addresses stay. `first` when the name was fine before.
        case stale(first: Bool)
        /// The lookup failed and the name never resolved: it admits nobody.
        case unresolved(first: Bool)
        /// The name left the policy while its lookup ran.
        case ignored
    }

    public var refresh: Duration
    public let retry: Duration
    public let minimumInterval: Duration
    public private(set) var records: [PeerName: PeerNameRecord] = [:]

    public init(refresh: Duration = .seconds(10), retry: Duration = .seconds(2), minimumInterval: Duration = .seconds(1)) {
        self.refresh = refresh
        self.retry = retry
        self.minimumInterval = minimumInterval
    }

    /// Follows the names of a policy just loaded or reloaded: new names are added (due now),
    /// names no longer in the policy dropped, and every kept name is due now too (a reload
    /// resolves again); kept names keep their addresses meanwhile.
    public mutating func follow(_ names: [PeerName], refresh: Duration, now: ContinuousClock.Instant) {
        self.refresh = refresh
        let wanted = Set(names)
        records = records.filter { wanted.contains($0.key) }
        for name in wanted {
            if records[name] == nil {
                records[name] = PeerNameRecord(name: name, due: now)
            } else {
                records[name]?.due = now
            }
        }
    }

    /// The names due at `now` with no lookup under way, marked as under way: at most as many
    /// as keep the lookups under way within `limit`, the longest overdue first.
    public mutating func takeDue(now: ContinuousClock.Instant, limit: Int = .max) -> [PeerName] {
        let room = max(0, limit - records.values.count { $0.inFlight })
        let due = records.values.filter { !$0.inFlight && $0.due <= now }
            .sorted { ($0.due, $0.name) < ($1.due, $1.name) }.prefix(room).map(\.name)
        for name in due { records[name]?.inFlight = true }
        return Array(due)
    }

    /// The earliest due time of a name with no lookup under way.
    public var nextDue: ContinuousClock.Instant? {
        records.values.filter { !$0.inFlight }.map(\.due).min()
    }

    /// Records a finished lookup of `name`.
    public mutating func record(_ name: PeerName, _ lookup: NameLookup, now: ContinuousClock.Instant) -> Outcome {
        guard var entry = records[name] else { return .ignored }
        entry.inFlight = false
        let outcome: Outcome
        switch lookup {
        case .addresses(let found, let ttl):
            let next = found.sorted()
            let previous = entry.addresses
            let wasStale = entry.state == .stale
            entry.state = .resolved
            entry.lastError = nil
            entry.resolvedAt = now
            entry.due = now + max(minimumInterval, min(refresh, ttl ?? refresh))
            if next == previous && !previous.isEmpty {
                outcome = .confirmed(recovered: wasStale)
            } else {
                entry.addresses = next
                entry.changes += 1
                let before = Set(previous)
                outcome = .changed(added: next.filter { !before.contains($0) }, removed: previous.filter { !found.contains($0) })
            }
        case .failed(let reason):
            entry.failures += 1
            entry.lastError = reason
            entry.due = now + min(refresh, retry)
            if entry.addresses.isEmpty {
                outcome = .unresolved(first: entry.state != .unresolved)
                entry.state = .unresolved
            } else {
                outcome = .stale(first: entry.state != .stale)
                entry.state = .stale
            }
        }
        records[name] = entry
        return outcome
    }

    /// Each name's addresses in force (names with none are absent), for `Policy.resolvingNames`.
    public var addresses: [PeerName: AddressSet] {
        records.compactMapValues { $0.addresses.isEmpty ? nil : $0.addressSet }
    }
}
