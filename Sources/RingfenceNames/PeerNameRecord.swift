import RingfenceAddresses
import RingfencePolicy

/// What proxyd knows of one peer name: the addresses it last resolved to, whether they are
/// current, and when to ask again.
public struct PeerNameRecord: Hashable, Sendable {
    /// Where a name stands.
    public enum State: String, Hashable, Sendable {
        /// Never resolved yet, no attempt finished: admits nobody.
        case resolving
        /// The last attempt gave its addresses.
        case resolved
        /// It resolved before, the last attempt failed: its last addresses stay in force.
        case stale
        /// Every attempt so far failed: admits nobody until one succeeds.
        case unresolved
    }

    public let name: PeerName
    public internal(set) var state = State.resolving
    /// The addresses in force, sorted; empty until the name first resolves.
    public internal(set) var addresses: [IPAddress] = []
    /// The last attempt's failure, while `stale` or `unresolved`.
    public internal(set) var lastError: String?
    /// When the addresses in force were last confirmed.
    public internal(set) var resolvedAt: ContinuousClock.Instant?
    /// Failed attempts and changes of the addresses, since the name entered the policy.
    public internal(set) var failures: UInt64 = 0
    public internal(set) var changes: UInt64 = 0
    /// When the next attempt is due, and whether one is under way.
    public internal(set) var due: ContinuousClock.Instant
    public internal(set) var inFlight = false

    init(name: PeerName, due: ContinuousClock.Instant) {
        self.name = name
        self.due = due
    }

    /// The addresses as a set for the allowlists: single hosts.
    public var addressSet: AddressSet {
        AddressSet(addresses.compactMap { try? CIDR(address: $0, prefixLength: $0.isIPv4 ? 32 : 128) })
    }
}
