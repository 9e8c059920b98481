import RingfenceAddresses

/// Which discover guard, if any, takes a listener that appeared: the rules of docs/discovery.md §1,
/// as a pure function so that they are tested without listeners.
///
/// In order: proxyd's own listeners are never candidates; a listener bound to a loopback address
/// cannot be reached from another host, so there is nothing to broker; a port a guard of the
/// policy names is that guard's; otherwise the first discover guard, in policy order, whose
/// `process` text is in the owner's command line (a guard without `process` takes any owner, and
/// a listener whose owner is unknown only such a guard).
public struct CandidateFilter: Sendable {
    /// A discover guard: its name and its `process` filter.
    public struct Rule: Hashable, Sendable {
        public var guardName: String
        public var process: String?

        public init(guardName: String, process: String?) {
            self.guardName = guardName
            self.process = process
        }
    }

    /// What to do with a listener.
    public enum Decision: Hashable, Sendable {
        /// Probe it; if it is an XPUB, the guard named brokers it.
        case probe(guardName: String)
        /// One of proxyd's own listeners.
        case own
        /// Bound to loopback only.
        case loopback
        /// The port of a guard the policy names.
        case namedGuard(String)
        /// No discover guard's filter matches the owner.
        case unmatched
    }

    public var ownPID: Int32
    /// proxyd's own listening ports (brokers, relays, metrics), for owners it cannot see.
    public var ownPorts: Set<UInt16>
    /// Ports the policy names, with their guard.
    public var namedPorts: [UInt16: String]
    public var rules: [Rule]

    public init(ownPID: Int32, ownPorts: Set<UInt16>, namedPorts: [UInt16: String], rules: [Rule]) {
        self.ownPID = ownPID
        self.ownPorts = ownPorts
        self.namedPorts = namedPorts
        self.rules = rules
    }

    public func decide(address: IPAddress, port: UInt16, pid: Int32?, commandLine: String?) -> Decision {
        if pid == ownPID || (pid == nil && ownPorts.contains(port)) { return .own }
        if address.isLoopback { return .loopback }
        if let named = namedPorts[port] { return .namedGuard(named) }
        for rule in rules {
            guard let text = rule.process else { return .probe(guardName: rule.guardName) }
            if let commandLine, commandLine.contains(text) { return .probe(guardName: rule.guardName) }
        }
        return .unmatched
    }

    /// The name a discovered XPUB's broker runs under: `GUARD/ADDRESS:PORT` (`[v6]` bracketed).
    public static func brokerName(guardName: String, address: IPAddress, port: UInt16) -> String {
        address.isIPv4 ? "\(guardName)/\(address):\(port)" : "\(guardName)/[\(address)]:\(port)"
    }

    /// Where the probe and the broker connect for a listener on `address`: the listener's own
    /// address, or loopback of its family for the wildcard.
    public static func target(of address: IPAddress) -> IPAddress {
        guard address.isUnspecified else { return address }
        return address.isIPv4 ? .v4(0x7F00_0001) : .v6(1)
    }
}
