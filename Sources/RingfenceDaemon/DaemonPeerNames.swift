import Dispatch
import Logging
import RingfenceAddresses
import RingfenceNames
import RingfencePolicy
import RingfenceSockets
import RingfenceStatus

/// Peers by name (`dns:NAME`, `lws:group`): the daemon looks each name up on `resolverQueue`
/// when `PeerNameTable` says it is due, and applies changed addresses to the fence and the
/// proxies through the reload path (`ReloadPlan`, `carryOut`), so the kernel sets change in place
/// and the connections of addresses that left are cut, as when a reload removes a peer.
extension Daemon {
    /// Lookups under way at once: a group of a thousand names must not take a thousand threads.
    static let maxLookupsInFlight = 16
    /// Changed addresses of several names arriving together (a LeaderWorkerSet group recreated)
    /// are applied once, this long after the first.
    static let peerNamesApplyDelay = DispatchTimeInterval.milliseconds(50)

    /// Follows the names of the policy just loaded or reloaded: new ones and kept ones are
    /// looked up now, names that left are forgotten. On the daemon's queue.
    func followPeerNames(_ written: Policy) {
        dispatchPrecondition(condition: .onQueue(queue))
        let names = written.peerNames
        peerNames.follow(names, refresh: written.daemon.dnsRefresh, now: .now)
        if names.isEmpty {
            peerNamesTimer?.cancel()
            peerNamesTimer = nil
            return
        }
        if peerNamesTimer == nil {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [unowned self] in lookUpDuePeerNames() }
            timer.resume()
            peerNamesTimer = timer
        }
        lookUpDuePeerNames()
    }

    /// Starts the lookups that are due, then sets the timer for the next.
    private func lookUpDuePeerNames() {
        for name in peerNames.takeDue(now: .now, limit: Self.maxLookupsInFlight) {
            resolverQueue.async { [weak self] in
                let lookup = NameResolver.lookup(name)
                guard let daemon = self else { return }
                daemon.queue.async { daemon.peerNameLookedUp(name, lookup) }
            }
        }
        schedulePeerNamesTimer()
    }

    private func schedulePeerNamesTimer() {
        guard let timer = peerNamesTimer else { return }
        guard let next = peerNames.nextDue else {
            timer.schedule(deadline: .distantFuture)
            return
        }
        let wait = max(Duration.zero, next - .now)
        timer.schedule(deadline: .now() + .nanoseconds(Int(wait.nanoseconds)), leeway: .milliseconds(10))
    }

    private func peerNameLookedUp(_ name: PeerName, _ lookup: NameLookup) {
        let outcome = peerNames.record(name, lookup, now: .now)
        let record = peerNames.records[name]
        let error = record?.lastError ?? ""
        switch outcome {
        case .changed(let added, let removed):
            logger.info(
                "peer name resolved to new addresses; the fence follows",
                metadata: [
                    "name": "\(name)", "added": "\(added.map(\.description).joined(separator: ","))",
                    "removed": "\(removed.map(\.description).joined(separator: ","))",
                ])
            metrics.peerNameChanges.increment()
            applyPeerNamesSoon()
        case .confirmed(let recovered):
            if recovered {
                logger.info("peer name resolves again; its addresses are current", metadata: ["name": "\(name)"])
            }
        case .stale(let first):
            metrics.peerNameFailures.increment()
            if first {
                logger.warning(
                    "peer name does not resolve; its last addresses stay in force (stale)",
                    metadata: [
                        "name": "\(name)", "error": "\(error)",
                        "addresses": "\(record?.addresses.map(\.description).joined(separator: ",") ?? "")",
                    ])
            }
        case .unresolved(let first):
            metrics.peerNameFailures.increment()
            if first {
                logger.warning(
                    "peer name does not resolve; it admits nobody until it does",
                    metadata: ["name": "\(name)", "error": "\(error)"])
            }
        case .ignored:
            break
        }
        lookUpDuePeerNames()
    }

    /// Applies the names' addresses once the burst of changes is in.
    private func applyPeerNamesSoon() {
        guard !peerNamesApplyPending else { return }
        peerNamesApplyPending = true
        queue.asyncAfter(deadline: .now() + Self.peerNamesApplyDelay) { [weak self] in
            guard let self else { return }
            peerNamesApplyPending = false
            applyPeerNames()
        }
    }

    /// The policy in force, its names resolved to what they resolve to now: applied in place
    /// (kernel sets, proxies' allowlists, cuts), or, if that fails, logged and tried again soon,
    /// the fence staying as it was.
    func applyPeerNames() {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let written = writtenPolicy, let current = policy else { return }
        let next = written.resolvingNames(peerNames.addresses)
        guard next != current else { return }
        let began = ContinuousClock.now
        do throws(DaemonError) {
            let plan = ReloadPlan(from: current, running: policyGuards, to: next)
            let cut = try carryOut(plan, next: next) + adopt(next)
            logger.info(
                "peer names applied",
                metadata: [
                    "updated": "\((plan.updated.map(\.name) + plan.kernelUpdated).joined(separator: ","))",
                    "cut": "\(cut.count)", "ms": "\(Int(((ContinuousClock.now - began).inSeconds * 1e3).rounded()))",
                ])
        } catch {
            logger.error(
                "could not apply the peer names' new addresses; the fence stays as it was, trying again in 1s",
                metadata: ["error": "\(error)"])
            queue.asyncAfter(deadline: .now() + 1) { [weak self] in self?.applyPeerNames() }
        }
    }

    /// Each name of the policy in force, for `proxyctl status`; nil when it has none.
    func peerNameStatuses() -> [PeerNameStatus]? {
        guard let written = writtenPolicy, !peerNames.records.isEmpty else { return nil }
        let now = ContinuousClock.now
        return peerNames.records.values.sorted { $0.name < $1.name }.map { record in
            PeerNameStatus(
                name: record.name.name, state: record.state.rawValue, addresses: record.addresses.map(\.description),
                error: record.lastError, confirmedSecondsAgo: record.resolvedAt.map { (now - $0).inSeconds },
                failures: record.failures, changes: record.changes,
                guards: written.guards.filter { $0.allowNames.contains(record.name) }.map(\.name))
        }
    }
}
