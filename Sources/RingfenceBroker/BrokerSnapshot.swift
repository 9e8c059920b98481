import RingfenceStatus

extension Broker {
    /// The guard's counters and subscribers as of now, on the loop: the totals of subscribers
    /// gone plus what the live ones have moved, so the figures only grow.
    func snapshot(base: GuardStatus) -> GuardSnapshot {
        loop.preconditionInLoop()
        let now = ContinuousClock.now
        var status = base
        var totals = counters
        totals.upstreamConnects += upstream.connects
        totals.messages += upstream.messagesIn
        var connections: [ConnectionStatus] = []
        for session in subscribers.values {
            let connection = session.status(guardName: base.name, now: now)
            totals.bytesToPeers += connection.bytesToPeer
            totals.bytesFromPeers += connection.bytesFromPeer
            status.queuedMessages += connection.queuedMessages
            status.queuedBytes += connection.queuedBytes
            connections.append(connection)
        }
        status.counters = totals
        status.connections = connections.count
        status.upstream = .init(
            state: upstream.stateName, address: upstream.address.map { "\($0)" },
            heldSeconds: heldBackSince.map { (now - $0).inSeconds })
        return GuardSnapshot(status: status, connections: connections.sorted { $0.id < $1.id })
    }
}
