import RingfenceAddresses
import Testing

@testable import RingfenceDiscovery

/// Which discover guard takes a listener, by the rules of docs/discovery.md §1.
struct CandidateFilterTests {
    private let host = IPAddress("10.0.0.1")!
    private let filter = CandidateFilter(
        ownPID: 100, ownPorts: [15557], namedPorts: [29500: "tcpstore"],
        rules: [.init(guardName: "tp", process: "vllm"), .init(guardName: "any", process: nil)])

    @Test func proxydsOwnListenersAreNeverCandidates() {
        #expect(filter.decide(address: host, port: 40000, pid: 100, commandLine: "proxyd") == .own)
        #expect(filter.decide(address: host, port: 15557, pid: nil, commandLine: nil) == .own)
    }

    @Test func loopbackListenersAndNamedPortsAreLeftAlone() {
        #expect(filter.decide(address: IPAddress("127.0.0.1")!, port: 40000, pid: 7, commandLine: "vllm") == .loopback)
        #expect(filter.decide(address: IPAddress("::1")!, port: 40000, pid: 7, commandLine: "vllm") == .loopback)
        #expect(filter.decide(address: host, port: 29500, pid: 7, commandLine: "vllm") == .namedGuard("tcpstore"))
    }

    @Test func theFirstGuardWhoseProcessTextMatchesTakesIt() {
        #expect(filter.decide(address: host, port: 40000, pid: 7, commandLine: "python -m vllm serve") == .probe(guardName: "tp"))
        #expect(filter.decide(address: .v4(0), port: 40000, pid: 7, commandLine: "sshd") == .probe(guardName: "any"))
        #expect(filter.decide(address: host, port: 40000, pid: nil, commandLine: nil) == .probe(guardName: "any"))
        let strict = CandidateFilter(ownPID: 1, ownPorts: [], namedPorts: [:], rules: [.init(guardName: "tp", process: "vllm")])
        #expect(strict.decide(address: host, port: 40000, pid: nil, commandLine: nil) == .unmatched)
        #expect(strict.decide(address: host, port: 40000, pid: 9, commandLine: "sshd") == .unmatched)
    }

    @Test func brokerNamesAndTargets() {
        #expect(CandidateFilter.brokerName(guardName: "tp", address: host, port: 5557) == "tp/10.0.0.1:5557")
        #expect(CandidateFilter.brokerName(guardName: "tp", address: IPAddress("fd00::1")!, port: 5557) == "tp/[fd00::1]:5557")
        #expect(CandidateFilter.target(of: .v4(0)) == IPAddress("127.0.0.1")!)
        #expect(CandidateFilter.target(of: .v6(0)) == IPAddress("::1")!)
        #expect(CandidateFilter.target(of: host) == host)
    }
}
