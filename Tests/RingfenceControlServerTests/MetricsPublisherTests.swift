import Prometheus
import RingfenceStatus
import Testing

@testable import RingfenceControlServer

/// Totals published at scrape time into a swift-prometheus registry, and the page built on it.
@Suite struct MetricsPublisherTests {
    static func relay(_ name: String, accepted: UInt64 = 0) -> GuardSnapshot {
        var counters = GuardCounters()
        counters.accepted = accepted
        counters.denied = ["peer-limit": 2]
        return GuardSnapshot(
            status: GuardStatus(
                name: name, kind: .tcp, port: 29500, listenPort: 39500, state: .running,
                upstream: .init(state: .perConnection, address: nil), connections: 1, maxConnections: 64,
                queuedMessages: 0, queuedBytes: 0, counters: counters),
            connections: [ConnectionStatus(guardName: name, id: 1, peer: "10.0.0.1", port: 40000, state: "relaying", ageSeconds: 1)])
    }

    static func broker(_ name: String, peers: [String]) -> GuardSnapshot {
        var counters = GuardCounters()
        counters.messages = 11
        counters.deliveries = 11
        return GuardSnapshot(
            status: GuardStatus(
                name: name, kind: .zmqXPUB, port: 5557, listenPort: 15557, state: .running,
                upstream: .init(state: .connected, address: "127.0.0.1:5557"), connections: peers.count,
                maxConnections: 256, queuedMessages: 3, queuedBytes: 300, counters: counters),
            connections: peers.enumerated().map {
                ConnectionStatus(
                    guardName: name, id: UInt64($0.offset), peer: $0.element, port: 40000, state: "active", ageSeconds: 1,
                    queuedMessages: 1, queuedBytes: 100)
            })
    }

    @Test func countersAdvanceByTheDifferenceSinceTheLastScrapeAndGaugesAreSet() {
        let registry = PrometheusCollectorRegistry()
        var publisher = MetricsPublisher(factory: RingfenceMetricsFactory(registry: registry))
        func scrape(_ total: UInt64, _ level: Int) -> PrometheusPage {
            publisher.publish([
                .total(.accepted, [("guard", "store")], total), .level(.guardConnections, [("guard", "store")], level),
            ])
            return PrometheusPage(registry.emitToString())
        }
        #expect(scrape(5, 7).value("ringfence_guard_accepted_total", ["guard": "store"]) == 5)
        #expect(scrape(12, 2).value("ringfence_guard_accepted_total", ["guard": "store"]) == 12)
        let again = scrape(12, 2)
        #expect(again.value("ringfence_guard_accepted_total", ["guard": "store"]) == 12)
        #expect(again.value("ringfence_guard_connections", ["guard": "store"]) == 2)
        // A total below the last: its source counts from zero again, and the counter goes on.
        #expect(scrape(3, 0).value("ringfence_guard_accepted_total", ["guard": "store"]) == 15)
        #expect(publisher.seriesCount == 2)
    }

    @Test func seriesMissingFromAScrapeLeaveTheRegistry() {
        let registry = PrometheusCollectorRegistry()
        var publisher = MetricsPublisher(factory: RingfenceMetricsFactory(registry: registry))
        publisher.publish([.total(.accepted, [("guard", "a")], 4), .level(.bans, [], 1)])
        #expect(PrometheusPage(registry.emitToString()).samples.count == 2)
        publisher.publish([])
        #expect(registry.emitToString().isEmpty)
        #expect(publisher.seriesCount == 0)
        // Back again: a new series, from the total it has now.
        publisher.publish([.total(.accepted, [("guard", "a")], 9)])
        #expect(PrometheusPage(registry.emitToString()).value("ringfence_guard_accepted_total", ["guard": "a"]) == 9)
    }

    @Test func aScanAddsNoSeriesAndPeersThatLeaveLeaveThePage() {
        let exposition = MetricsExposition()
        var counts: Set<Int> = []
        for round in 0..<20 {
            let peers = (0..<100).map { "10.\(round).\($0 / 250).\($0 % 250)" }
            let page = PrometheusPage(exposition.render(guards: [Self.broker("bus", peers: peers)]))
            #expect(page.series("ringfence_peer_connections").count == MetricsExposition.maxPeersPerGuard + 1)
            #expect(page.value("ringfence_peer_connections", ["guard": "bus", "peer": "other"]) == 68)
            counts.insert(exposition.publishedSeries)
        }
        #expect(counts.count == 1)
        let left = PrometheusPage(exposition.render(guards: [Self.broker("bus", peers: ["10.9.9.9"])]))
        #expect(left.series("ringfence_peer_connections").map(\.labels) == [["guard": "bus", "peer": "10.9.9.9"]])
        let none = PrometheusPage(exposition.render(guards: [Self.broker("bus", peers: [])]))
        #expect(none.samples.filter { $0.name.hasPrefix("ringfence_peer_") }.isEmpty)
        #expect(none.types["ringfence_peer_connections"] == nil)
    }

    @Test func aGuardARemovedByReloadLeavesThePageAndOneThatComesBackCarriesOn() {
        let exposition = MetricsExposition()
        let both = PrometheusPage(exposition.render(guards: [Self.relay("store", accepted: 3), Self.broker("bus", peers: [])]))
        #expect(both.value("ringfence_guard_accepted_total", ["guard": "store"]) == 3)
        let busOnly = PrometheusPage(exposition.render(guards: [Self.broker("bus", peers: [])]))
        #expect(busOnly.samples.allSatisfy { $0.labels["guard"] != "store" })
        #expect(busOnly.value("ringfence_broker_messages_total", ["guard": "bus"]) == 11)
        // The daemon carries a guard's totals over: back with them, and on from there.
        let back = PrometheusPage(exposition.render(guards: [Self.relay("store", accepted: 5), Self.broker("bus", peers: [])]))
        #expect(back.value("ringfence_guard_accepted_total", ["guard": "store"]) == 5)
        #expect(back.value("ringfence_guard_denied_total", ["guard": "store", "reason": "peer-limit"]) == 2)
        #expect(back.value("ringfence_guard_denied_total", ["guard": "store", "reason": "rate-limit"]) == 0)
    }

    /// The "Metrics" table of docs/commands.md: every family's labels.
    static let documentedLabels: [String: Set<String>] = [
        "ringfence_reloads_total": ["result"], "ringfence_guard_info": ["guard", "kind", "port", "listen_port"],
        "ringfence_guard_connections": ["guard"], "ringfence_guard_max_connections": ["guard"],
        "ringfence_guard_accepted_total": ["guard"], "ringfence_guard_denied_total": ["guard", "reason"],
        "ringfence_guard_cut_by_reload_total": ["guard"], "ringfence_guard_violations_total": ["guard"],
        "ringfence_guard_banned_total": ["guard"],
        "ringfence_guard_peer_received_bytes_total": ["guard"], "ringfence_guard_peer_sent_bytes_total": ["guard"],
        "ringfence_guard_upstream_received_bytes_total": ["guard"], "ringfence_broker_messages_total": ["guard"],
        "ringfence_broker_deliveries_total": ["guard"], "ringfence_broker_drops_total": ["guard"],
        "ringfence_broker_evictions_total": ["guard"], "ringfence_broker_holds_total": ["guard"],
        "ringfence_broker_held_milliseconds_total": ["guard"], "ringfence_broker_upstream_connects_total": ["guard"],
        "ringfence_broker_upstream_up": ["guard"], "ringfence_broker_queued_messages": ["guard"],
        "ringfence_broker_queued_bytes": ["guard"], "ringfence_peer_connections": ["guard", "peer"],
        "ringfence_peer_queued_messages": ["guard", "peer"], "ringfence_peer_queued_bytes": ["guard", "peer"],
        "ringfence_fence_refused_total": ["guard"], "ringfence_fence_audit_hits_total": ["guard"],
        "ringfence_fence_guard_audit": ["guard", "kind"], "ringfence_bans": [], "ringfence_kicks_total": [],
        "ringfence_bans_total": [], "ringfence_dns_name_changes_total": [],
        "ringfence_dns_lookup_failures_total": [], "ringfence_dns_names": ["state"],
    ]

    @Test func everyFamilyHasItsDocumentedNameTypeHelpAndLabels() {
        let exposition = MetricsExposition()
        exposition.reloadsRefused.increment()
        exposition.kicks.increment()
        var host = GuardStatus(
            name: "host", kind: .host, port: 0, listenPort: 0, state: .kernel, upstream: .init(state: .none, address: nil),
            connections: 0, maxConnections: 0, queuedMessages: 0, queuedBytes: 0, counters: GuardCounters(), mode: .audit,
            fenceAudited: 4)
        host.fenceRefused = 0
        let guards = [Self.relay("store", accepted: 1), Self.broker("bus", peers: ["10.0.0.2", "fd00::2"])]
        let page = PrometheusPage(
            exposition.render(
                guards: guards,
                fence: .init(
                    guards: guards.map(\.status) + [host], bans: 2,
                    names: [PeerNameStatus(name: "a.example", state: "stale", addresses: ["10.0.0.2"])])))
        #expect(page.problems.isEmpty, "\(page.problems)")
        #expect(Set(page.types.keys) == Set(MetricFamily.catalog.keys))
        #expect(Set(Self.documentedLabels.keys) == Set(MetricFamily.catalog.keys))
        for family in MetricFamily.catalog.values {
            #expect(page.types[family.name] == family.kind.rawValue, "\(family.name)")
            #expect(page.helps[family.name] == family.help, "\(family.name)")
            for sample in page.series(family.name) {
                #expect(Set(sample.labels.keys) == Self.documentedLabels[family.name], "\(family.name) \(sample.labels)")
            }
        }
        #expect(page.value("ringfence_reloads_total", ["result": "applied"]) == 0)
        #expect(page.value("ringfence_reloads_total", ["result": "refused"]) == 1)
        #expect(page.value("ringfence_kicks_total") == 1 && page.value("ringfence_bans_total") == 0)
        #expect(page.value("ringfence_bans") == 2)
        #expect(page.value("ringfence_fence_audit_hits_total", ["guard": "host"]) == 4)
        #expect(page.value("ringfence_fence_guard_audit", ["guard": "host", "kind": "host"]) == 1)
        #expect(page.value("ringfence_guard_info", ["guard": "store", "kind": "tcp", "port": "29500", "listen_port": "39500"]) == 1)
        #expect(page.value("ringfence_peer_connections", ["guard": "bus", "peer": "fd00::2"]) == 1)
        // Broker families only for brokers.
        #expect(page.series("ringfence_broker_messages_total").map(\.labels) == [["guard": "bus"]])
    }

    @Test func eachPageHasItsOwnRegistry() {
        let first = MetricsExposition()
        let second = MetricsExposition()
        first.kicks.increment()
        first.kicks.increment()
        #expect(PrometheusPage(first.render(guards: [])).value("ringfence_kicks_total") == 2)
        #expect(PrometheusPage(second.render(guards: [])).value("ringfence_kicks_total") == 0)
    }
}
