import RingfenceStatus
import Testing

@testable import RingfenceControlServer

@Suite struct PrometheusTextTests {
    @Test func familiesWithEscapingAndExactIntegers() {
        var text = PrometheusText()
        text.family(
            "ringfence_x_total", .counter, help: "Help with \\ and\nnewline.",
            [.init([("guard", "a\"b\\c\nd")], .integer(UInt64.max)), .init([], .integer(0))])
        text.family("ringfence_y", .gauge, help: "Y.", [.init([("a", "1"), ("b", "2")], .real(1.5)), .init([], .real(.nan))])
        #expect(
            text.text == """
                # HELP ringfence_x_total Help with \\\\ and\\nnewline.
                # TYPE ringfence_x_total counter
                ringfence_x_total{guard="a\\"b\\\\c\\nd"} 18446744073709551615
                ringfence_x_total 0
                # HELP ringfence_y Y.
                # TYPE ringfence_y gauge
                ringfence_y{a="1",b="2"} 1.5
                ringfence_y NaN

                """)
    }

    @Test func exposedPeerSeriesAreBounded() {
        let connections = (0..<100).map {
            ConnectionStatus(guardName: "bus", id: UInt64($0), peer: "10.0.\($0 / 250).\($0 % 250)", port: 1, state: "active", ageSeconds: 0, queuedBytes: $0)
        }
        let status = GuardStatus(
            name: "bus", kind: .zmqXPUB, port: 5557, listenPort: 15557, state: .running,
            upstream: .init(state: .connected, address: nil), connections: 100, maxConnections: 200, queuedMessages: 0,
            queuedBytes: 0, counters: GuardCounters())
        let text = MetricsExposition.render(
            guards: [GuardSnapshot(status: status, connections: connections)], reloadsApplied: 1, reloadsRefused: 0)
        let peerLines = text.split(separator: "\n").filter { $0.hasPrefix("ringfence_peer_connections{") }
        #expect(peerLines.count == MetricsExposition.maxPeersPerGuard + 1)
        #expect(peerLines.contains(#"ringfence_peer_connections{guard="bus",peer="other"} 68"#))
        #expect(text.contains(#"ringfence_peer_queued_bytes{guard="bus",peer="10.0.0.99"} 99"#))
        #expect(text.contains(#"ringfence_broker_upstream_up{guard="bus"} 1"#))
        #expect(text.contains(#"ringfence_reloads_total{result="applied"} 1"#))
    }
}
