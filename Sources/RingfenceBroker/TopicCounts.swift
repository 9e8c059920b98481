/// How many admitted subscribers hold each topic, which decides what goes upstream.
///
/// The engine's writer (an XPUB with XPUB_VERBOSE) counts subscription messages to learn how
/// many readers it has, so the broker sends a SUBSCRIBE upstream for every subscriber that
/// takes a topic, and a CANCEL only when the last holder lets it go: libzmq keeps a *set* of
/// topics per pipe, and one CANCEL on the broker's single upstream pipe would unsubscribe every
/// subscriber of that topic at once. Each subscriber's own topics are a set too (a repeated
/// SUBSCRIBE from one subscriber changes nothing and is not forwarded), so one connection counts
/// as one reader, whatever it sends.
struct TopicCounts {
    private(set) var holders: [[UInt8]: Int] = [:]

    /// A subscriber took `topic`: forward a SUBSCRIBE.
    mutating func add(_ topic: [UInt8]) {
        holders[topic, default: 0] += 1
    }

    /// A subscriber let `topic` go. - Returns: whether it was the last holder (forward a CANCEL).
    mutating func remove(_ topic: [UInt8]) -> Bool {
        guard let count = holders[topic] else { return false }
        if count <= 1 {
            holders[topic] = nil
            return true
        }
        holders[topic] = count - 1
        return false
    }

    /// One entry per holder, topics in a stable order: what a fresh upstream connection is sent.
    var subscriptions: [[UInt8]] {
        holders.keys.sorted { $0.lexicographicallyPrecedes($1) }.flatMap { topic in
            Array(repeating: topic, count: holders[topic] ?? 0)
        }
    }
}
