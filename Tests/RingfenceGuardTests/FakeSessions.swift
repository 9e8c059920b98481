import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceGuard
import RingfenceIO
import RingfenceSockets
import RingfenceStatus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Sessions that only hold their sockets: what the front end hands over, and what it asks.
/// A held socket is kept as its descriptor (released from its `Socket`, adopted again to close).
final class FakeSessions: GuardSessions, @unchecked Sendable {
    struct Held {
        var id: UInt64
        var fd: Int32
        var peer: SocketAddress
        var destination: SocketAddress
    }

    let acceptLoop = EventLoop(index: 0, label: "fake.sessions")
    var loops: [EventLoop] { [acceptLoop] }
    private let admission: Admission
    private let held = Mutex([UInt64: Held]())
    private let counts = Mutex((sweeps: 0, housekeeping: 0, nextID: UInt64(0)))
    private let guardName: String

    init(admission: Admission, guardName: String) {
        self.admission = admission
        self.guardName = guardName
    }

    var sessions: [Held] { held.withLock { Array($0.values).sorted { $0.id < $1.id } } }
    var sweeps: Int { counts.withLock { $0.sweeps } }

    func started(upstream: SocketAddress?) {}

    func admitted(_ socket: consuming Socket, peer: SocketAddress, destination: SocketAddress) {
        let fd = socket.release()
        let id = counts.withLock { $0.nextID += 1; return $0.nextID }
        held.withLock { $0[id] = Held(id: id, fd: fd, peer: peer, destination: destination) }
    }

    func close(for reason: CutReason, where matches: @escaping @Sendable (IPAddress) -> Bool) -> [ReloadReport.Cut] {
        acceptLoop.queue.sync {
            let closing = held.withLock { held in
                let chosen = held.values.filter { matches($0.peer.address) }
                for session in chosen { held[session.id] = nil }
                return chosen
            }
            return closing.sorted { $0.id < $1.id }.map { session in
                Socket(adopting: session.fd).close(reset: true)
                admission.release(session.peer.address)
                return ReloadReport.Cut(
                    guardName: guardName, id: session.id, peer: "\(session.peer.address)", port: session.peer.port,
                    reason: reason)
            }
        }
    }

    func sweep(on loop: EventLoop, now: ContinuousClock.Instant) {
        counts.withLock { $0.sweeps += 1 }
    }

    func housekeeping() {
        counts.withLock { $0.housekeeping += 1 }
    }

    func snapshot(base: GuardStatus) -> GuardSnapshot {
        let connections = sessions.map {
            ConnectionStatus(
                guardName: guardName, id: $0.id, peer: "\($0.peer.address)", port: $0.peer.port, state: "held",
                ageSeconds: 0)
        }
        var status = base
        status.connections = connections.count
        return GuardSnapshot(status: status, connections: connections)
    }

    func shutdown() {
        _ = close(for: .guardRemoved) { _ in true }
    }
}

/// A guard of fake sessions behind the real front end, as the daemon would hold it.
final class FakeGuard: Guard, @unchecked Sendable {
    struct Settings: GuardConfiguration {
        var frontEnd: FrontEndSettings
    }

    let frontEnd: GuardFrontEnd<FakeSessions>
    private(set) var current: Settings

    init(_ settings: FrontEndSettings, originalDestination: @escaping OriginalDestination) throws(GuardError) {
        current = Settings(frontEnd: settings)
        frontEnd = try GuardFrontEnd(settings, logger: .init(label: "test"), originalDestination: originalDestination) {
            FakeSessions(admission: $0, guardName: settings.name)
        }
    }

    var settings: any GuardConfiguration { current }
    var sessions: FakeSessions { frontEnd.sessions }
    func start() throws(GuardError) { try frontEnd.start() }
    func stop() { frontEnd.stop() }

    func canUpdate(to next: any GuardConfiguration) -> Bool {
        next.frontEnd.canBeUpdatedInPlace(from: current.frontEnd)
    }

    func update(to next: any GuardConfiguration) -> [ReloadReport.Cut] {
        current = Settings(frontEnd: next.frontEnd)
        return frontEnd.update(to: next.frontEnd)
    }

    func snapshot() -> GuardSnapshot { frontEnd.snapshot() }
    func kick(_ block: AddressSet) -> [ReloadReport.Cut] { frontEnd.kick(block) }
}
