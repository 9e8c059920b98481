import Dispatch
import Logging
import Metrics
import RingfenceAddresses
import RingfenceControl
import RingfenceFirewall
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The operators' tools on the control socket: `audit` (what the fence refused, or would
/// have), `explain` (which guard and rule decide a connection), `kick` (close a peer's
/// connections, optionally banning it in the kernel), `bans` and `unban`. All on the daemon's
/// queue; every change is logged and counted.
extension Daemon {
    func audit() -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let policy, policy.firewall.apply else { return .failure(Self.fenceNotLoaded) }
        let records: [FenceRecord]
        do {
            records = try firewall.records(policy)
        } catch {
            return .failure(ControlError(code: .firewallError, message: "cannot read the fence's records", details: [error.description]))
        }
        let now = Logfmt.epochSeconds()
        let entries = records.map { record in
            AuditEntry(
                guardName: record.guardName, mode: record.mode.rawValue, source: record.source,
                protocol: record.transport, port: record.port, count: record.count,
                firstSeen: Logfmt.timestamp(epochSeconds: now - record.firstSeenSecondsAgo),
                lastSeen: Logfmt.timestamp(epochSeconds: now - record.lastSeenSecondsAgo))
        }
        return ControlReply(ok: true, audit: entries)
    }

    func explain(_ request: ControlRequest) -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let policy else { return .failure(Self.fenceNotLoaded) }
        guard let text = request.address, let address = IPAddress(text) else {
            return .failure(ControlError(code: .badRequest, message: "'\(request.address ?? "")' is not an IP address"))
        }
        guard let port = request.port, port > 0 else {
            return .failure(ControlError(code: .badRequest, message: "explain needs a port from 1 to 65535"))
        }
        guard let transport = FenceVerdict.Transport(rawValue: request.transport ?? "tcp") else {
            return .failure(ControlError(code: .badRequest, message: "transport must be \"tcp\" or \"udp\""))
        }
        let bans = policy.firewall.apply ? (try? firewall.bans(table: policy.firewall.table)) ?? [] : []
        let verdict = FenceVerdict.decide(
            address, port: port, transport: transport, policy: policy, bans: bans, discovered: discovery.coveredPorts())
        return ControlReply(ok: true, explain: Explanation(verdict, address: address, port: port, transport: transport))
    }

    func kick(_ request: ControlRequest, credentials: Posix.PeerCredentials) -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let policy else { return .failure(Self.fenceNotLoaded) }
        let block: CIDR
        switch Self.block(request.peer) {
        case .success(let parsed): block = parsed
        case .failure(let error): return .failure(error)
        }
        var duration: Duration?
        if let text = request.ban {
            switch BanDuration.parse(text) {
            case .success(let parsed): duration = parsed
            case .failure(let error): return .failure(ControlError(code: .badRequest, message: "--ban \(error.description)"))
            }
            guard policy.firewall.apply else { return .failure(Self.fenceNotLoaded) }
        }
        // `--guard NAME`: a guard of the policy in force, or one started at run time (`startGuard`).
        let chosen = request.guardName
        if let name = chosen, case .failure(let error) = Self.kickTarget(name, policy: policy.guards.map(\.name), runtime: runtimeGuards) {
            return .failure(error)
        }
        // The ban first: a kicked peer must not get back in between the kick and the ban.
        var ban: BanStatus?
        if let duration {
            do {
                try firewall.ban(block, for: duration, table: policy.firewall.table)
            } catch {
                return .failure(ControlError(
                    code: error.kind == .banConflict ? .banConflict : .firewallError, message: error.description))
            }
            bansIssued += 1
            metrics.bansIssued.increment()
            ban = BanStatus(peer: "\(block)", expiresInSeconds: duration.inSeconds)
        }
        let set = AddressSet([block])
        var cut: [ReloadReport.Cut] = []
        for service in orderedServices() where chosen == nil || chosen == service.name {
            cut += service.kick(set)
        }
        // Connections no proxy of ours holds, destroyed in the kernel: with the host guard, every
        // TCP socket of the peer but the relay and broker listen ports (those guards closed their
        // own above); for firewall guards, the sockets on their ports.
        var sockets: Int?
        let scope = policy.guards.filter { $0.isKernelOnly && (chosen == nil || chosen == $0.name) }
        let host = scope.first { $0.kind == .host }
        let firewallPorts = scope.filter { $0.kind == .firewall }.flatMap(\.ports)
        if host != nil || !firewallPorts.isEmpty {
            do throws(Errno) {
                sockets = try host != nil
                    ? SocketKiller.destroyTCP(remote: block, keepLocalPorts: guardListenPorts())
                    : SocketKiller.destroyTCP(remote: block, onlyLocalPorts: firewallPorts)
            } catch {
                logger.error("kick: cannot close the host's sockets", metadata: ["peer": "\(block)", "error": "\(error)"])
                return .failure(ControlError(
                    code: .internal, message: "cannot close the host's sockets of \(block): \(error)",
                    details: ["the \(cut.count) relay and broker connections listed were closed"]))
            }
        }
        kicks += 1
        metrics.kicks.increment()
        logger.warning(
            "peer kicked",
            metadata: [
                "peer": "\(block)", "guard": "\(request.guardName ?? "all")", "cut": "\(cut.count)",
                "sockets": "\(sockets.map(String.init) ?? "-")", "ban": "\(request.ban ?? "none")",
                "uid": "\(credentials.uid)", "pid": "\(credentials.pid)",
            ])
        return ControlReply(
            ok: true,
            kick: KickReport(peer: "\(block)", guardName: request.guardName, cut: cut, socketsClosed: sockets, ban: ban))
    }

    /// Checks the guard `proxyctl kick --guard NAME` names: one of the policy in force
    /// (`policy`) or one `startGuard` started (`runtime`); otherwise a not-found error listing both.
    static func kickTarget(_ name: String, policy: [String], runtime: [String]) -> Result<String, ControlError> {
        if policy.contains(name) || runtime.contains(name) { return .success(name) }
        let names = (policy + runtime).joined(separator: ", ")
        return .failure(ControlError(code: .notFound, message: "no guard '\(name)' in the policy in force or started since (guards: \(names))"))
    }

    func bans() -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let policy, policy.firewall.apply else { return .failure(Self.fenceNotLoaded) }
        do {
            // Host-wide bans first, then each guard's strike bans.
            let bans = try firewall.bans(table: policy.firewall.table) + firewall.strikeBans(policy)
            return ControlReply(
                ok: true,
                bans: bans.map { BanStatus(peer: $0.peer, expiresInSeconds: Double($0.secondsLeft), guardName: $0.guardName) })
        } catch {
            return .failure(ControlError(code: .firewallError, message: "cannot read the bans", details: [error.description]))
        }
    }

    func unban(_ request: ControlRequest, credentials: Posix.PeerCredentials) -> ControlReply {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let policy, policy.firewall.apply else { return .failure(Self.fenceNotLoaded) }
        let block: CIDR
        switch Self.block(request.peer) {
        case .success(let parsed): block = parsed
        case .failure(let error): return .failure(error)
        }
        // The host-wide ban of the block, and a single address's strike bans in every guard.
        var guards: [String] = []
        do {
            let hostWide = try firewall.unban(block, table: policy.firewall.table)
            if block.prefixLength == block.address.bitWidth { guards = try liftStrikeBans(block.address, policy: policy) }
            guard hostWide || !guards.isEmpty else {
                return .failure(ControlError(code: .notFound, message: "\(block) is not banned (proxyctl bans lists the bans)"))
            }
        } catch {
            return .failure(ControlError(code: .firewallError, message: "cannot lift the ban of \(block)", details: [error.description]))
        }
        logger.warning(
            "ban lifted",
            metadata: [
                "peer": "\(block)", "guards": "\(guards.isEmpty ? "-" : guards.joined(separator: ","))", "uid": "\(credentials.uid)",
                "pid": "\(credentials.pid)",
            ])
        return ControlReply(ok: true, unban: BanStatus(peer: "\(block)", expiresInSeconds: 0))
    }

    /// Bans in force now, for status and metrics; 0 when they cannot be read.
    /// Bans in force now: host-wide ones (`proxyctl kick --ban`) and the guards' strike bans,
    /// as `proxyctl bans` lists them.
    func banCount() -> Int {
        guard let policy, policy.firewall.apply else { return 0 }
        return ((try? firewall.bans(table: policy.firewall.table).count) ?? 0) + firewall.strikeBans(policy).count
    }

    private static let fenceNotLoaded = ControlError(
        code: .firewallError, message: "the fence is not loaded by proxyd ([firewall] apply = false)")

    private static func block(_ text: String?) -> Result<CIDR, ControlError> {
        guard let text, !text.isEmpty else {
            return .failure(ControlError(code: .badRequest, message: "give a peer: an address or a block such as 10.0.0.0/24"))
        }
        do throws(AddressParseError) {
            return .success(try CIDR(parsing: text))
        } catch {
            return .failure(ControlError(code: .badRequest, message: "'\(text)' is not an address or block: \(error.description)"))
        }
    }
}

extension Explanation {
    init(_ verdict: FenceVerdict, address: IPAddress, port: UInt16, transport: FenceVerdict.Transport) {
        self.init(
            address: "\(address)", port: port, protocol: transport.rawValue, verdict: verdict.outcome.rawValue,
            guardName: verdict.guardName, mode: verdict.mode?.rawValue, reason: verdict.reason)
    }
}
