import RingfenceStatus

/// The daemon's `/metrics` page: per guard its connections, upstream, traffic, drops,
/// evictions and denials; per admitted peer its connections and queues.
///
/// Names follow Prometheus conventions (`ringfence_` prefix, base units, `_total` on counters).
/// Counters come from `GuardStatus.counters`, which the daemon carries across reloads, so they
/// never go backwards. Peer series exist only for connected peers, which the allowlist already
/// admitted, and at most `maxPeersPerGuard` per guard (the busiest by queued bytes, then
/// connections); the rest are summed under `peer="other"`. A scan therefore adds no series.
public enum MetricsExposition {
    public static let maxPeersPerGuard = 32

    /// The kernel fence's side of the page: every guard's refusals and audit hits (from the
    /// table's counters, which count packets refused, and flows that audit mode let through),
    /// the bans in force, and the operators' kicks and bans.
    public struct Fence: Sendable {
        public var guards: [GuardStatus]
        public var bans: Int
        public var kicks: UInt64
        public var bansIssued: UInt64

        public init(guards: [GuardStatus] = [], bans: Int = 0, kicks: UInt64 = 0, bansIssued: UInt64 = 0) {
            self.guards = guards
            self.bans = bans
            self.kicks = kicks
            self.bansIssued = bansIssued
        }
    }

    public static func render(
        guards: [GuardSnapshot], reloadsApplied: UInt64, reloadsRefused: UInt64, fence: Fence = Fence()
    ) -> String {
        var text = PrometheusText()
        text.family(
            "ringfence_fence_refused_total", .counter,
            help: "Packets the kernel fence refused, per guard (enforce mode; since the table was made).",
            fence.guards.map { .init([("guard", $0.name)], .integer($0.fenceRefused)) })
        text.family(
            "ringfence_fence_audit_hits_total", .counter,
            help: "New flows the kernel fence would have refused and let through, per guard (audit mode).",
            fence.guards.map { .init([("guard", $0.name)], .integer($0.fenceAudited)) })
        text.family(
            "ringfence_fence_guard_audit", .gauge, help: "1 when the guard is in audit mode (refuses nothing).",
            fence.guards.map { .init([("guard", $0.name), ("kind", $0.kind.rawValue)], .integer($0.mode == .audit ? 1 : 0)) })
        text.family(
            "ringfence_bans", .gauge, help: "Peers banned now (proxyctl kick --ban).", [.init([], .signed(Int64(fence.bans)))])
        text.family("ringfence_kicks_total", .counter, help: "proxyctl kick calls.", [.init([], .integer(fence.kicks))])
        text.family(
            "ringfence_bans_total", .counter, help: "Bans set by proxyctl kick --ban.", [.init([], .integer(fence.bansIssued))])
        text.family(
            "ringfence_reloads_total", .counter, help: "Policy reloads (SIGHUP or proxyctl reload), by result.",
            [.init([("result", "applied")], .integer(reloadsApplied)), .init([("result", "refused")], .integer(reloadsRefused))])
        let statuses = guards.map(\.status)
        text.family(
            "ringfence_guard_info", .gauge, help: "Each running relay and broker guard (value 1).",
            statuses.map {
                .init(
                    [("guard", $0.name), ("kind", $0.kind.rawValue), ("port", "\($0.port)"), ("listen_port", "\($0.listenPort)")],
                    .integer(1))
            })
        func gauge(_ name: String, _ help: String, _ value: (GuardStatus) -> Int) {
            text.family(name, .gauge, help: help, statuses.map { .init([("guard", $0.name)], .signed(Int64(value($0)))) })
        }
        func counter(_ name: String, _ help: String, kinds: Set<String> = ["tcp", "zmq-xpub"], _ value: (GuardCounters) -> UInt64) {
            text.family(
                name, .counter, help: help,
                statuses.filter { kinds.contains($0.kind.rawValue) }.map { .init([("guard", $0.name)], .integer(value($0.counters))) })
        }
        gauge("ringfence_guard_connections", "Live connections (relay clients, broker subscribers).") { $0.connections }
        gauge("ringfence_guard_max_connections", "The cap on live connections (max_connections, max_subscribers).") {
            $0.maxConnections
        }
        text.family(
            "ringfence_broker_upstream_up", .gauge, help: "1 when the broker's link to the engine's XPUB is connected.",
            statuses.filter { $0.kind == .zmqXPUB }.map {
                .init([("guard", $0.name)], .integer($0.upstream.state == .connected ? 1 : 0))
            })
        counter("ringfence_guard_accepted_total", "Connections admitted.") { $0.accepted }
        text.family(
            "ringfence_guard_denied_total", .counter, help: "Connections refused at accept, by reason.",
            statuses.flatMap { status in
                ["not-allowed", "peer-limit", "total-limit", "rate-limit"].map {
                    .init([("guard", status.name), ("reason", $0)], .integer(status.counters.denied[$0] ?? 0))
                }
            })
        counter("ringfence_guard_cut_by_reload_total", "Connections closed because a reload no longer allowed their peer.") {
            $0.cutByReload
        }
        counter("ringfence_guard_violations_total", "Connections closed for breaking the protocol (ZMTP, TCPStore gate).") {
            $0.violations
        }
        counter("ringfence_guard_peer_received_bytes_total", "Bytes read from peers.") { $0.bytesFromPeers }
        counter("ringfence_guard_peer_sent_bytes_total", "Bytes written to peers.") { $0.bytesToPeers }
        counter("ringfence_guard_upstream_received_bytes_total", "Bytes read from the upstream.") { $0.bytesFromUpstream }
        let broker: Set<String> = ["zmq-xpub"]
        counter("ringfence_broker_messages_total", "Whole messages read from the engine.", kinds: broker) { $0.messages }
        counter("ringfence_broker_deliveries_total", "Messages queued to subscribers.", kinds: broker) { $0.deliveries }
        counter("ringfence_broker_drops_total", "Messages not queued to a full subscriber (on_overflow = drop).", kinds: broker) {
            $0.drops
        }
        counter("ringfence_broker_evictions_total", "Subscribers disconnected at their high-water marks.", kinds: broker) {
            $0.evictions
        }
        counter("ringfence_broker_upstream_connects_total", "Completed handshakes with the engine.", kinds: broker) {
            $0.upstreamConnects
        }
        let brokers = statuses.filter { $0.kind == .zmqXPUB }
        text.family(
            "ringfence_broker_queued_messages", .gauge, help: "Messages queued to subscribers now, summed.",
            brokers.map { .init([("guard", $0.name)], .signed(Int64($0.queuedMessages))) })
        text.family(
            "ringfence_broker_queued_bytes", .gauge, help: "Bytes queued to subscribers now, summed.",
            brokers.map { .init([("guard", $0.name)], .signed(Int64($0.queuedBytes))) })
        peerFamilies(guards, into: &text)
        return text.text
    }

    private struct PeerLine {
        var connections = 0
        var queuedMessages = 0
        var queuedBytes = 0
    }

    private static func peerFamilies(_ guards: [GuardSnapshot], into text: inout PrometheusText) {
        var rows: [(guardName: String, peer: String, line: PeerLine)] = []
        for snapshot in guards {
            var byPeer: [String: PeerLine] = [:]
            for connection in snapshot.connections {
                byPeer[connection.peer, default: PeerLine()].connections += 1
                byPeer[connection.peer, default: PeerLine()].queuedMessages += connection.queuedMessages
                byPeer[connection.peer, default: PeerLine()].queuedBytes += connection.queuedBytes
            }
            let ranked = byPeer.sorted {
                ($0.value.queuedBytes, $0.value.connections, $1.key) > ($1.value.queuedBytes, $1.value.connections, $0.key)
            }
            var other = PeerLine()
            for (index, entry) in ranked.enumerated() {
                if index < maxPeersPerGuard {
                    rows.append((snapshot.status.name, entry.key, entry.value))
                } else {
                    other.connections += entry.value.connections
                    other.queuedMessages += entry.value.queuedMessages
                    other.queuedBytes += entry.value.queuedBytes
                }
            }
            if ranked.count > maxPeersPerGuard { rows.append((snapshot.status.name, "other", other)) }
        }
        func family(_ name: String, _ help: String, _ value: (PeerLine) -> Int) {
            text.family(
                name, .gauge, help: help,
                rows.map { .init([("guard", $0.guardName), ("peer", $0.peer)], .signed(Int64(value($0.line)))) })
        }
        family("ringfence_peer_connections", "Live connections per admitted peer.") { $0.connections }
        family("ringfence_peer_queued_messages", "Messages queued to a peer's subscribers now.") { $0.queuedMessages }
        family("ringfence_peer_queued_bytes", "Bytes queued to a peer's subscribers now.") { $0.queuedBytes }
    }
}
