import RingfenceAdmission
import RingfenceBroker
import RingfenceDiscovery
import RingfenceGuard
import RingfenceListeners
import RingfencePolicy
import RingfenceRelay
import RingfenceStatus
import RingfenceTCPStore

/// The policy's guards as the typed settings the relay and the broker run from: the data plane
/// never sees the policy. Pure.
enum GuardSettingsMapping {
    /// The typed settings of a relay or broker guard; nil for a kernel-only guard and for a
    /// discover guard, which names no port: its brokers are made per discovered XPUB, not here.
    static func settings(for spec: RingfencePolicy.Guard) -> (any GuardConfiguration)? {
        switch spec.settings {
        case .relay(let relay): return self.relay(spec, relay)
        case .broker(let broker): return broker.discover ? nil : self.broker(spec, broker)
        case .firewall, .host: return nil
        }
    }

    static func relay(_ spec: RingfencePolicy.Guard, _ settings: RelaySettings) -> RelayGuardSettings {
        let limits = Admission.Limits(
            maxConnections: settings.maxConnections, maxConnectionsPerPeer: settings.maxConnectionsPerPeer,
            acceptRatePerPeer: settings.acceptRatePerPeer, strikes: strikes(spec))
        let relay = RelayLimits(
            bufferBytes: settings.bufferBytes.bytes, connectTimeout: settings.connectTimeout,
            idleTimeout: settings.idleTimeout, appProtocol: settings.appProtocol == .tcpstore ? .tcpstore : .none,
            busyPoll: settings.busyPoll, handshakeTimeout: settings.handshakeTimeout,
            partialTimeout: settings.partialTimeout,
            tcpstore: TCPStoreLimits(
                maxKeyBytes: settings.maxKeyBytes.bytes, maxValueBytes: settings.maxValueBytes.bytes,
                maxKeys: settings.maxKeys))
        return RelayGuardSettings(
            frontEnd: frontEnd(
                spec, kind: .tcp, port: spec.ports[0], listenPort: settings.listenPort, limits: limits,
                upstream: settings.upstream),
            relay: relay)
    }

    static func broker(_ spec: RingfencePolicy.Guard, _ settings: BrokerSettings) -> BrokerGuardSettings {
        broker(spec, settings, port: spec.ports[0], listenPort: settings.listenPort, upstream: settings.upstream)
    }

    private static func broker(
        _ spec: RingfencePolicy.Guard, _ settings: BrokerSettings, port: UInt16, listenPort: UInt16, upstream: Endpoint?
    ) -> BrokerGuardSettings {
        let limits = Admission.Limits(
            maxConnections: settings.maxSubscribers, maxConnectionsPerPeer: settings.maxSubscribersPerPeer,
            acceptRatePerPeer: settings.acceptRatePerPeer, strikes: strikes(spec))
        let broker = BrokerLimits(
            hwmMessages: settings.hwmMessages, hwmBytes: settings.hwmBytes.bytes, maxTopicBytes: settings.maxTopicBytes,
            maxSubscriptions: settings.maxSubscriptionsPerPeer, maxMessageBytes: settings.maxMessageBytes.bytes,
            handshakeTimeout: settings.handshakeTimeout, onOverflow: BrokerLimits.OverflowAction(settings.onOverflow),
            maxStall: settings.maxStall, busyPoll: settings.busyPoll)
        return BrokerGuardSettings(
            frontEnd: frontEnd(spec, kind: .zmqXPUB, port: port, listenPort: listenPort, limits: limits, upstream: upstream),
            broker: broker)
    }

    /// The guard's `ban_after`, `ban_window` and `ban_for`.
    static func strikes(_ spec: RingfencePolicy.Guard) -> StrikeLedger.Rules {
        StrikeLedger.Rules(banAfter: spec.strikes.banAfter, window: spec.strikes.banWindow, banFor: spec.strikes.banFor)
    }

    private static func frontEnd(
        _ spec: RingfencePolicy.Guard, kind: GuardKind, port: UInt16, listenPort: UInt16, limits: Admission.Limits,
        upstream: Endpoint?
    ) -> FrontEndSettings {
        FrontEndSettings(
            name: spec.name, kind: kind, port: port, listenPort: listenPort, allow: spec.allow,
            mode: spec.mode == .audit ? .audit : .enforce, limits: limits,
            upstream: upstream.map { HostPort(host: $0.host, port: $0.port) })
    }
}

extension GuardSettingsMapping {
    /// The settings of the broker for one XPUB a discover guard found: the guard's allowlist,
    /// mode and limits; the listener's own address (loopback for a wildcard listener) and port
    /// as upstream; a listen port the kernel picks.
    static func discovered(
        _ spec: RingfencePolicy.Guard, _ settings: BrokerSettings, name: String, listener: ListeningSocket
    ) -> BrokerGuardSettings {
        let upstream = Endpoint(host: "\(CandidateFilter.target(of: listener.address))", port: listener.port)
        var made = broker(spec, settings, port: listener.port, listenPort: 0, upstream: upstream)
        made.frontEnd.name = name
        return made
    }
}

extension BrokerLimits.OverflowAction {
    /// The broker's action for the policy's `on_overflow`.
    init(_ action: BrokerSettings.OverflowAction) {
        switch action {
        case .block: self = .block
        case .disconnect: self = .disconnect
        case .drop: self = .drop
        }
    }
}
