import RingfenceAddresses

/// What a `[peers]` group or an `allow` list admits: addresses and blocks known from the policy
/// itself, and DNS names whose addresses proxyd learns at run time.
struct PeerSet: Hashable, Sendable {
    var addresses = AddressSet()
    var names: Set<PeerName> = []

    func union(_ other: PeerSet) -> PeerSet {
        PeerSet(addresses: addresses.union(other.addresses), names: names.union(other.names))
    }
}
