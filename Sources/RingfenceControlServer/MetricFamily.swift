/// One metric family of the `/metrics` page: its name, its Prometheus type and its `# HELP` text.
///
/// The catalog below is the one list of what the page may hold (the "Metrics" table of docs/commands.md):
/// `RingfenceMetricsFactory` takes each family's HELP from it, and the tests check every name and
/// type against it.
public struct MetricFamily: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable {
        case counter
        case gauge
    }

    public var name: String
    public var kind: Kind
    public var help: String

    public init(_ name: String, _ kind: Kind, help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }
}

extension MetricFamily {
    // The daemon's own events, counted where they happen.
    public static let reloads = MetricFamily(
        "ringfence_reloads_total", .counter, help: "Policy reloads (SIGHUP or proxyctl reload), by result.")
    public static let kicks = MetricFamily("ringfence_kicks_total", .counter, help: "proxyctl kick calls.")
    public static let bansIssued = MetricFamily("ringfence_bans_total", .counter, help: "Bans set by proxyctl kick --ban.")
    public static let peerNameChanges = MetricFamily(
        "ringfence_dns_name_changes_total", .counter,
        help: "Times a peer name (dns:, lws:group) resolved to new addresses, the first resolution included.")
    public static let peerNameFailures = MetricFamily(
        "ringfence_dns_lookup_failures_total", .counter, help: "Lookups of peer names that failed.")
    public static let peerNames = MetricFamily(
        "ringfence_dns_names", .gauge,
        help: "The policy's peer names by state: resolved, stale (last addresses kept), unresolved or resolving (admit nobody).")

    // The kernel fence.
    public static let fenceRefused = MetricFamily(
        "ringfence_fence_refused_total", .counter,
        help: "Packets the kernel fence refused, per guard (enforce mode; since the table was made).")
    public static let fenceAuditHits = MetricFamily(
        "ringfence_fence_audit_hits_total", .counter,
        help: "New flows the kernel fence would have refused and let through, per guard (audit mode).")
    public static let fenceGuardAudit = MetricFamily(
        "ringfence_fence_guard_audit", .gauge, help: "1 when the guard is in audit mode (refuses nothing).")
    public static let bans = MetricFamily("ringfence_bans", .gauge, help: "Bans in force now: proxyctl kick --ban, and the guards' strike bans.")

    // Relay and broker guards.
    public static let guardInfo = MetricFamily(
        "ringfence_guard_info", .gauge, help: "Each running relay and broker guard (value 1).")
    public static let guardConnections = MetricFamily(
        "ringfence_guard_connections", .gauge, help: "Live connections (relay clients, broker subscribers).")
    public static let guardMaxConnections = MetricFamily(
        "ringfence_guard_max_connections", .gauge,
        help: "The cap on live connections (max_connections, max_subscribers).")
    public static let upstreamUp = MetricFamily(
        "ringfence_broker_upstream_up", .gauge, help: "1 when the broker's link to the engine's XPUB is connected.")
    public static let accepted = MetricFamily("ringfence_guard_accepted_total", .counter, help: "Connections admitted.")
    public static let denied = MetricFamily(
        "ringfence_guard_denied_total", .counter, help: "Connections refused at accept, by reason.")
    public static let cutByReload = MetricFamily(
        "ringfence_guard_cut_by_reload_total", .counter,
        help: "Connections closed because a reload no longer allowed their peer.")
    public static let banned = MetricFamily(
        "ringfence_guard_banned_total", .counter,
        help: "Peers banned in the kernel from the guard's ports after ban_after strikes in ban_window.")
    public static let violations = MetricFamily(
        "ringfence_guard_violations_total", .counter,
        help: "Connections closed for breaking the protocol (ZMTP, TCPStore gate).")
    public static let peerReceivedBytes = MetricFamily(
        "ringfence_guard_peer_received_bytes_total", .counter, help: "Bytes read from peers.")
    public static let peerSentBytes = MetricFamily(
        "ringfence_guard_peer_sent_bytes_total", .counter, help: "Bytes written to peers.")
    public static let upstreamReceivedBytes = MetricFamily(
        "ringfence_guard_upstream_received_bytes_total", .counter, help: "Bytes read from the upstream.")
    public static let messages = MetricFamily(
        "ringfence_broker_messages_total", .counter, help: "Whole messages read from the engine.")
    public static let deliveries = MetricFamily(
        "ringfence_broker_deliveries_total", .counter, help: "Messages queued to subscribers.")
    public static let drops = MetricFamily(
        "ringfence_broker_drops_total", .counter, help: "Messages not queued to a full subscriber (on_overflow = drop).")
    public static let evictions = MetricFamily(
        "ringfence_broker_evictions_total", .counter,
        help: "Subscribers evicted: at their high-water marks (disconnect), or taking nothing for max_stall.")
    public static let holds = MetricFamily(
        "ringfence_broker_holds_total", .counter,
        help: "Times the engine was held back because a subscriber's queue was full (on_overflow = block).")
    public static let heldMilliseconds = MetricFamily(
        "ringfence_broker_held_milliseconds_total", .counter, help: "Time the engine was held back, in milliseconds.")
    public static let upstreamConnects = MetricFamily(
        "ringfence_broker_upstream_connects_total", .counter, help: "Completed handshakes with the engine.")
    public static let queuedMessages = MetricFamily(
        "ringfence_broker_queued_messages", .gauge, help: "Messages queued to subscribers now, summed.")
    public static let queuedBytes = MetricFamily(
        "ringfence_broker_queued_bytes", .gauge, help: "Bytes queued to subscribers now, summed.")

    // Admitted peers (bounded: see `MetricsExposition.maxPeersPerGuard`).
    public static let peerConnections = MetricFamily(
        "ringfence_peer_connections", .gauge, help: "Live connections per admitted peer.")
    public static let peerQueuedMessages = MetricFamily(
        "ringfence_peer_queued_messages", .gauge, help: "Messages queued to a peer's subscribers now.")
    public static let peerQueuedBytes = MetricFamily(
        "ringfence_peer_queued_bytes", .gauge, help: "Bytes queued to a peer's subscribers now.")

    /// Every family the page may show, by name.
    public static let catalog: [String: MetricFamily] = Dictionary(
        uniqueKeysWithValues: [
            reloads, kicks, bansIssued, peerNameChanges, peerNameFailures, peerNames, fenceRefused, fenceAuditHits, fenceGuardAudit, bans, guardInfo,
            guardConnections, guardMaxConnections, upstreamUp, accepted, denied, cutByReload, violations, banned,
            peerReceivedBytes, peerSentBytes, upstreamReceivedBytes, messages, deliveries, drops, evictions,
            holds, heldMilliseconds, upstreamConnects, queuedMessages, queuedBytes, peerConnections, peerQueuedMessages, peerQueuedBytes,
        ].map { ($0.name, $0) })
}
