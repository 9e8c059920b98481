import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceStatus

@testable import RingfenceDaemon

/// Settings of a fake guard: the front end's part only.
struct FakeSettings: GuardConfiguration {
    var frontEnd: FrontEndSettings

    init(_ name: String, allow: [String], listenPort: UInt16 = 1) {
        frontEnd = FrontEndSettings(
            name: name, kind: .tcp, port: 1, listenPort: listenPort,
            allow: AddressSet(allow.map { try! CIDR(parsing: $0) }),
            limits: Admission.Limits(maxConnections: 10, maxConnectionsPerPeer: 10, acceptRatePerPeer: 10))
    }
}

/// A guard that holds made-up connections and cuts them by the front end's rule.
final class FakeRosterGuard: Guard, @unchecked Sendable {
    private(set) var current: any GuardConfiguration
    var connections: [ConnectionStatus]
    let failsToStart: Bool
    private(set) var running = false
    private(set) var updates = 0

    init(_ settings: any GuardConfiguration, peers: [String], failsToStart: Bool) {
        current = settings
        self.failsToStart = failsToStart
        connections = peers.enumerated().map { index, peer in
            ConnectionStatus(
                guardName: settings.frontEnd.name, id: UInt64(index + 1), peer: peer, port: 40000, state: "relaying",
                ageSeconds: 1)
        }
    }

    var settings: any GuardConfiguration { current }

    func start() throws(GuardError) {
        if failsToStart { throw .unresolvable(kind: .tcp, "nowhere:1") }
        running = true
    }

    func stop() { running = false }
    func canUpdate(to next: any GuardConfiguration) -> Bool { true }

    func update(to next: any GuardConfiguration) -> [ReloadReport.Cut] {
        updates += 1
        current = next
        let cut = connections.filter { next.frontEnd.cuts(IPAddress($0.peer)!) }
        connections.removeAll { next.frontEnd.cuts(IPAddress($0.peer)!) }
        return cut.map { ReloadReport.Cut($0, reason: .notAllowed) }
    }

    func snapshot() -> GuardSnapshot {
        var status = GuardStatus(
            name: current.frontEnd.name, kind: .tcp, port: 1, listenPort: 1, state: running ? .running : .stopped,
            upstream: .init(state: .perConnection, address: nil), connections: connections.count, maxConnections: 10,
            queuedMessages: 0, queuedBytes: 0, counters: GuardCounters())
        status.counters.accepted = UInt64(connections.count)
        return GuardSnapshot(status: status, connections: connections)
    }

    func kick(_ block: AddressSet) -> [ReloadReport.Cut] { [] }
}

/// Makes fake guards: each name's connections from `peers`, and the names in `failing` fail to start.
final class FakeFactory: GuardFactory {
    var peers: [String: [String]] = [:]
    var failing: Set<String> = []
    private(set) var made: [FakeRosterGuard] = []

    func makeGuard(_ settings: any GuardConfiguration) throws(GuardError) -> any Guard {
        let name = settings.frontEnd.name
        let made = FakeRosterGuard(settings, peers: peers[name] ?? [], failsToStart: failing.contains(name))
        self.made.append(made)
        return made
    }
}

/// A fence that takes the rules, or refuses them, and counts the attempts.
final class FakeFence: FenceApplier {
    let refuses: Bool
    private(set) var applied = 0

    init(refuses: Bool = false) { self.refuses = refuses }

    func apply() throws(DaemonError) {
        if refuses { throw .guardFailed("the fake fence refuses") }
        applied += 1
    }
}
