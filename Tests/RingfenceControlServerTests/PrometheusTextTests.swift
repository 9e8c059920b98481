import RingfenceStatus
import Testing

@testable import RingfenceControlServer

@Suite struct PrometheusTextTests {
    /// The registry's page escapes label values and prints counters as exact integers.
    @Test func familiesWithEscapingAndExactIntegers() {
        var counters = GuardCounters()
        counters.bytesFromPeers = 1 << 60 + 1
        let status = GuardStatus(
            name: "a\"b\\c\nd", kind: .tcp, port: 1, listenPort: 2, state: .running,
            upstream: .init(state: .perConnection, address: nil), connections: 0, maxConnections: 1,
            queuedMessages: 0, queuedBytes: 0, counters: counters)
        let text = MetricsExposition().render(guards: [GuardSnapshot(status: status, connections: [])])
        #expect(text.contains(#"ringfence_guard_peer_received_bytes_total{guard="a\"b\\c\nd"} 1152921504606846977"#))
        #expect(text.contains("# HELP ringfence_guard_peer_received_bytes_total Bytes read from peers.\n"))
        #expect(text.contains("# TYPE ringfence_guard_peer_received_bytes_total counter\n"))
        let page = PrometheusPage(text)
        #expect(page.problems.isEmpty, "\(page.problems)")
        #expect(page.value("ringfence_guard_connections", ["guard": "a\"b\\c\nd"]) == 0)
    }

    @Test func exposedPeerSeriesAreBounded() {
        let connections = (0..<100).map {
            ConnectionStatus(guardName: "bus", id: UInt64($0), peer: "10.0.\($0 / 250).\($0 % 250)", port: 1, state: "active", ageSeconds: 0, queuedBytes: $0)
        }
        let status = GuardStatus(
            name: "bus", kind: .zmqXPUB, port: 5557, listenPort: 15557, state: .running,
            upstream: .init(state: .connected, address: nil), connections: 100, maxConnections: 200, queuedMessages: 0,
            queuedBytes: 0, counters: GuardCounters())
        let exposition = MetricsExposition()
        exposition.reloadsApplied.increment()
        let text = exposition.render(guards: [GuardSnapshot(status: status, connections: connections)])
        let peerLines = text.split(separator: "\n").filter { $0.hasPrefix("ringfence_peer_connections{") }
        #expect(peerLines.count == MetricsExposition.maxPeersPerGuard + 1)
        // Gauges print as the registry prints doubles: 68 connections is "68.0".
        #expect(peerLines.contains(#"ringfence_peer_connections{guard="bus",peer="other"} 68.0"#))
        #expect(text.contains(#"ringfence_peer_queued_bytes{guard="bus",peer="10.0.0.99"} 99"#))
        #expect(text.contains(#"ringfence_broker_upstream_up{guard="bus"} 1"#))
        #expect(text.contains(#"ringfence_reloads_total{result="applied"} 1"#))
    }
}
