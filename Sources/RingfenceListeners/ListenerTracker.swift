/// The listeners a watch knows, per family (AF_INET, AF_INET6), and how a fresh listing of one
/// family differs from them. Pure: the watch feeds it listings.
struct ListenerTracker {
    private var known: [Int32: Set<ListeningSocket>] = [:]
    /// Each family's last listing as it came: a poll that finds it unchanged (the kernel walks its
    /// hash in the same order) costs one array comparison, no hashing.
    private var last: [Int32: [ListeningSocket]] = [:]

    /// Whether a known listener of `family` has local port `port`.
    func knows(family: Int32, port: UInt16) -> Bool {
        known[family]?.contains { $0.port == port } ?? false
    }

    /// Takes `listing` as the truth for `family`; returns what appeared and what disappeared,
    /// each in address and port order. A listener is the same one only with the same address,
    /// port and inode: a port closed and bound again between two listings is a disappearance and
    /// an appearance.
    mutating func reconcile(family: Int32, listing: [ListeningSocket]) -> (appeared: [ListeningSocket], disappeared: [ListeningSocket]) {
        if last[family] == listing { return ([], []) }
        last[family] = listing
        let now = Set(listing)
        let before = known[family] ?? []
        known[family] = now
        let order: (ListeningSocket, ListeningSocket) -> Bool = { ($0.address, $0.port, $0.inode) < ($1.address, $1.port, $1.inode) }
        return (now.subtracting(before).sorted(by: order), before.subtracting(now).sorted(by: order))
    }
}
