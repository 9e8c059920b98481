import CoreMetrics
import Prometheus
import RingfenceStatus
import Synchronization

/// The daemon's `/metrics` page: per guard its connections, upstream, traffic, drops,
/// evictions and denials; per admitted peer its connections and queues; the kernel fence's
/// refusals and bans; the daemon's reloads and kicks.
///
/// One swift-prometheus registry per page, so per daemon (no process-global metrics system), and
/// the page is the registry's own text. The daemon's events (reloads, kicks, bans set) are
/// swift-metrics counters it advances where they happen; everything else is published into the
/// registry at each scrape by `MetricsPublisher` (its doc says why).
///
/// Names follow Prometheus conventions (`ringfence_` prefix, base units, `_total` on counters),
/// and `MetricFamily` lists them. Counters come from `GuardStatus.counters`, which the daemon
/// carries across reloads, so they never go backwards. Peer series exist only for connected
/// peers, which the allowlist already admitted, and at most `maxPeersPerGuard` per guard (the
/// busiest by queued bytes, then connections); the rest are summed under `peer="other"`, and a
/// peer that leaves leaves the registry. A scan therefore adds no series.
public final class MetricsExposition: Sendable {
    public static let maxPeersPerGuard = 32

    /// The kernel fence's side of the page: every guard's refusals and audit hits (from the
    /// table's counters, which count packets refused, and flows that audit mode let through),
    /// and the bans in force.
    public struct Fence: Sendable {
        public var guards: [GuardStatus]
        public var bans: Int
        /// The policy's peer names, for their count by state.
        public var names: [PeerNameStatus]

        public init(guards: [GuardStatus] = [], bans: Int = 0, names: [PeerNameStatus] = []) {
            self.guards = guards
            self.bans = bans
            self.names = names
        }
    }

    public let registry = PrometheusCollectorRegistry()
    public let factory: RingfenceMetricsFactory
    /// Policy reloads applied and refused, `proxyctl kick` calls, and bans they set: counted by
    /// the daemon as they happen.
    public let reloadsApplied: CoreMetrics.Counter
    public let reloadsRefused: CoreMetrics.Counter
    public let kicks: CoreMetrics.Counter
    public let bansIssued: CoreMetrics.Counter
    /// Peer names resolved to new addresses, and failed lookups: counted by the daemon.
    public let peerNameChanges: CoreMetrics.Counter
    public let peerNameFailures: CoreMetrics.Counter
    private let publisher: Mutex<MetricsPublisher>

    public init() {
        factory = RingfenceMetricsFactory(registry: registry)
        let reloads = MetricFamily.reloads.name
        reloadsApplied = CoreMetrics.Counter(label: reloads, dimensions: [("result", "applied")], factory: factory)
        reloadsRefused = CoreMetrics.Counter(label: reloads, dimensions: [("result", "refused")], factory: factory)
        kicks = CoreMetrics.Counter(label: MetricFamily.kicks.name, factory: factory)
        bansIssued = CoreMetrics.Counter(label: MetricFamily.bansIssued.name, factory: factory)
        peerNameChanges = CoreMetrics.Counter(label: MetricFamily.peerNameChanges.name, factory: factory)
        peerNameFailures = CoreMetrics.Counter(label: MetricFamily.peerNameFailures.name, factory: factory)
        publisher = Mutex(MetricsPublisher(factory: factory))
    }

    /// Publishes the running guards' snapshots (counters with retired guards' totals added in)
    /// and the fence's side, then renders the whole registry in Prometheus's text format.
    public func render(guards: [GuardSnapshot], fence: Fence = Fence()) -> String {
        let samples = Self.fenceSamples(fence) + Self.guardSamples(guards) + Self.peerSamples(guards)
        publisher.withLock { $0.publish(samples) }
        return registry.emitToString()
    }

    /// How many series the publisher holds now (the daemon's event counters aside).
    public var publishedSeries: Int { publisher.withLock { $0.seriesCount } }

    static func fenceSamples(_ fence: Fence) -> [MetricsPublisher.Sample] {
        var samples: [MetricsPublisher.Sample] = []
        for status in fence.guards {
            samples.append(.total(.fenceRefused, [("guard", status.name)], status.fenceRefused))
            samples.append(.total(.fenceAuditHits, [("guard", status.name)], status.fenceAudited))
            samples.append(
                .level(.fenceGuardAudit, [("guard", status.name), ("kind", status.kind.rawValue)], status.mode == .audit ? 1 : 0))
        }
        samples.append(.level(.bans, [], fence.bans))
        if !fence.names.isEmpty {
            for state in ["resolving", "resolved", "stale", "unresolved"] {
                samples.append(.level(.peerNames, [("state", state)], fence.names.count { $0.state == state }))
            }
        }
        return samples
    }

    static func guardSamples(_ guards: [GuardSnapshot]) -> [MetricsPublisher.Sample] {
        var samples: [MetricsPublisher.Sample] = []
        for status in guards.map(\.status) {
            let name = [("guard", status.name)]
            samples.append(
                .level(
                    .guardInfo,
                    [("guard", status.name), ("kind", status.kind.rawValue), ("port", "\(status.port)"),
                     ("listen_port", "\(status.listenPort)")], 1))
            samples.append(.level(.guardConnections, name, status.connections))
            samples.append(.level(.guardMaxConnections, name, status.maxConnections))
            let counters = status.counters
            samples.append(.total(.accepted, name, counters.accepted))
            for reason in ["not-allowed", "peer-limit", "total-limit", "rate-limit"] {
                samples.append(.total(.denied, name + [("reason", reason)], counters.denied[reason] ?? 0))
            }
            samples.append(.total(.cutByReload, name, counters.cutByReload))
            samples.append(.total(.violations, name, counters.violations))
            samples.append(.total(.banned, name, counters.banned))
            samples.append(.total(.peerReceivedBytes, name, counters.bytesFromPeers))
            samples.append(.total(.peerSentBytes, name, counters.bytesToPeers))
            samples.append(.total(.upstreamReceivedBytes, name, counters.bytesFromUpstream))
            guard status.kind == .zmqXPUB else { continue }
            samples.append(.level(.upstreamUp, name, status.upstream.state == .connected ? 1 : 0))
            samples.append(.total(.messages, name, counters.messages))
            samples.append(.total(.deliveries, name, counters.deliveries))
            samples.append(.total(.drops, name, counters.drops))
            samples.append(.total(.evictions, name, counters.evictions))
            samples.append(.total(.holds, name, counters.holds))
            samples.append(.total(.heldMilliseconds, name, counters.heldNanoseconds / 1_000_000))
            samples.append(.total(.upstreamConnects, name, counters.upstreamConnects))
            samples.append(.level(.queuedMessages, name, status.queuedMessages))
            samples.append(.level(.queuedBytes, name, status.queuedBytes))
        }
        return samples
    }

    private struct PeerLine {
        var connections = 0
        var queuedMessages = 0
        var queuedBytes = 0
    }

    /// Per guard, its connected peers: the `maxPeersPerGuard` busiest each with their own
    /// series, the rest summed under `peer="other"`.
    static func peerSamples(_ guards: [GuardSnapshot]) -> [MetricsPublisher.Sample] {
        var samples: [MetricsPublisher.Sample] = []
        func add(_ guardName: String, _ peer: String, _ line: PeerLine) {
            let labels = [("guard", guardName), ("peer", peer)]
            samples.append(.level(.peerConnections, labels, line.connections))
            samples.append(.level(.peerQueuedMessages, labels, line.queuedMessages))
            samples.append(.level(.peerQueuedBytes, labels, line.queuedBytes))
        }
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
                    add(snapshot.status.name, entry.key, entry.value)
                } else {
                    other.connections += entry.value.connections
                    other.queuedMessages += entry.value.queuedMessages
                    other.queuedBytes += entry.value.queuedBytes
                }
            }
            if ranked.count > maxPeersPerGuard { add(snapshot.status.name, "other", other) }
        }
        return samples
    }
}
