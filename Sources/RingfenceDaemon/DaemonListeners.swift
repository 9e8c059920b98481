import Dispatch
import RingfenceAddresses
import RingfenceControl
import RingfenceDiscovery
import RingfenceListeners
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus

#if canImport(Glibc)
import Glibc
#endif

/// `proxyctl listeners`: every TCP listener of this namespace, what it is and what covers it.
extension Daemon {
    /// The listen ports of every running relay and broker, the policy's and discovery's.
    func guardListenPorts() -> [UInt16] {
        roster.guards.values.map(\.listenPort)
    }

    /// proxyd's own listening ports: its guards' listen ports and the metrics endpoint.
    func ownListenPorts() -> Set<UInt16> {
        var ports = Set(guardListenPorts())
        if let metrics = policy?.daemon.metricsListen { ports.insert(metrics.port) }
        return ports
    }

    /// The rows of `proxyctl listeners`, by port then address.
    func listeners() -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        let sockets: [ListeningSocket]
        do throws(ListenerError) {
            sockets = try SocketListing.listeners()
        } catch {
            return .failure(ControlError(code: .internal, message: "cannot list the listeners: \(error)"))
        }
        let known = discovery.entries
        let unknown = Set(sockets.filter { known[$0]?.owner == nil }.map(\.inode))
        let owners = unknown.isEmpty ? [:] : ProcessTable.owners(of: unknown)
        let ownPorts = ownListenPorts()
        let rows = sockets.map { socket in
            row(socket, owner: known[socket]?.owner ?? owners[socket.inode], phase: known[socket]?.phase, ownPorts: ownPorts)
        }
        return ControlReply(
            ok: true, listeners: rows.sorted { ($0.port, $0.address) < ($1.port, $1.address) })
    }

    private func row(
        _ socket: ListeningSocket, owner: SocketOwner?, phase: DiscoveryService.Phase?, ownPorts: Set<UInt16>
    ) -> ListenerStatus {
        var row = ListenerStatus(
            address: "\(socket.address)", port: socket.port, pid: owner?.pid,
            process: owner.map { String($0.commandLine.prefix(120)) }, listenerClass: "unprobed", socketType: nil,
            coverage: .nothing, guardName: nil)
        switch phase {
        case .classified(_, let verdict), .brokered(_, _, _, let verdict):
            row.listenerClass = verdict.kind.rawValue
            row.socketType = verdict.socketType
        case .probing:
            row.listenerClass = "probing"
        default:
            break
        }
        if owner?.pid == getpid() || (owner == nil && ownPorts.contains(socket.port)) {
            row.coverage = .proxyd
            return row
        }
        if case .brokered(_, let broker, _, _) = phase {
            row.coverage = .brokered
            row.guardName = broker
            row.readersBrokered = roster.guards[broker]?.snapshot().status.connections
            row.directConnections = discovery.directConnections(to: socket.port).count
            return row
        }
        if socket.address.isLoopback {
            row.coverage = .loopback
            return row
        }
        if let named = policy?.guardNaming(port: socket.port) {
            switch named.kind {
            case .tcp: row.coverage = .relayed
            case .zmqXPUB: row.coverage = .brokered
            case .firewall, .host: row.coverage = .fenced
            }
            row.guardName = named.name
            row.audit = named.mode == .audit
            return row
        }
        if case .probing(let name) = phase {
            row.coverage = .fenced
            row.guardName = name
            return row
        }
        if let host = policy?.hostGuard, case .host(let settings) = host.settings {
            if settings.publicPorts.contains(socket.port) {
                row.coverage = .public
            } else {
                row.coverage = .fenced
                row.guardName = host.name
                row.audit = host.mode == .audit
            }
        }
        return row
    }
}
