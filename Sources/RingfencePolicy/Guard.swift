import RingfenceAddresses

/// One fenced service: the ports it listens on, the peers allowed to reach them, and what stands
/// in front of it besides the kernel fence.
public struct Guard: Hashable, Sendable {
    /// What protects a guard's port.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// The kernel fence only.
        case firewall
        /// The kernel fence plus a transparent TCP relay (optionally with the TCPStore gate).
        case tcp
        /// The kernel fence plus the ZMTP broker in front of a ZeroMQ XPUB.
        case zmqXPUB = "zmq-xpub"
        /// The kernel fence on every other TCP and UDP port of the host (at most one per policy).
        case host
    }

    /// Whether a guard refuses what its allowlist does not admit, or only records it.
    public enum Mode: String, Hashable, Sendable, CaseIterable {
        /// Refuse, and record what was refused.
        case enforce
        /// Refuse nothing; record what would have been refused. How an operator adopts a
        /// default-deny fence: audit, read `proxyctl audit`, then enforce with a reload.
        case audit
    }

    /// The kind-specific part of a guard.
    public enum Settings: Hashable, Sendable {
        case firewall
        case relay(RelaySettings)
        case broker(BrokerSettings)
        case host(HostSettings)
    }

    /// Unique within the policy; used in logs and in nftables set names.
    public var name: String
    /// Guarded TCP ports on this host: one for `tcp` and `zmq-xpub`, one or more for `firewall`;
    /// none for `host` and for a discover guard (`discovers`), whose ports proxyd finds at run time.
    public var ports: [UInt16]
    /// The peers allowed to reach `ports`, with groups resolved.
    public var allow: AddressSet
    /// `allow` as written in the policy (`@workers`, `10.0.0.5`), for people.
    public var allowEntries: [String]
    public var settings: Settings
    public var mode: Mode = .enforce
    /// When strikes ban a peer in the kernel (`tcp` and `zmq-xpub` guards; unused by the others).
    public var strikes = StrikeSettings()
    /// The DNS names `allow` admits besides its addresses (`dns:NAME`, `lws:group`), sorted.
    /// proxyd resolves them at run time and adds what they resolve to (`Policy.resolvingNames`);
    /// until then they admit nobody.
    public var allowNames: [PeerName] = []

    public var kind: Kind {
        switch settings {
        case .firewall: return .firewall
        case .relay: return .tcp
        case .broker: return .zmqXPUB
        case .host: return .host
        }
    }

    /// Whether the guard lives in the kernel only (`firewall`, `host`): no relay or broker runs for it.
    /// A discover guard is not kernel-only although it has no `listenPort`: its brokers run.
    public var isKernelOnly: Bool { kind == .firewall || kind == .host }

    /// Whether this is a `zmq-xpub` guard with `discover = true`: it names no port; proxyd brokers
    /// every ZMTP XPUB listener it discovers, through the guard's run-time sets (docs/nftables.md).
    public var discovers: Bool {
        if case .broker(let broker) = settings { return broker.discover }
        return false
    }

    /// Whether the guard lets `address` through: it is allowed, or the guard only audits.
    public func admits(_ address: IPAddress) -> Bool {
        mode == .audit || allow.contains(address)
    }

    /// The local port of the relay or broker that remote traffic is redirected to; nil for `firewall`,
    /// `host` and a discover guard (each of its brokers gets an ephemeral port at run time).
    public var listenPort: UInt16? {
        switch settings {
        case .firewall, .host: return nil
        case .relay(let relay): return relay.listenPort
        case .broker(let broker): return broker.discover ? nil : broker.listenPort
        }
    }

    /// Whether a running guard made from `other` can take this one on in place at a reload,
    /// keeping its connections: the same name, kind and ports, the same listen port, upstream
    /// and (relay) protocol; for a discover guard, the same `process` filter. The allowlist and
    /// every limit may differ.
    public func canBeUpdatedInPlace(from other: Guard) -> Bool {
        guard name == other.name, ports == other.ports else { return false }
        switch (settings, other.settings) {
        case (.firewall, .firewall), (.host, .host):
            return true
        case (.relay(let new), .relay(let old)):
            return new.listenPort == old.listenPort && new.upstream == old.upstream && new.appProtocol == old.appProtocol
        case (.broker(let new), .broker(let old)):
            return new.listenPort == old.listenPort && new.upstream == old.upstream && new.discover == old.discover
                && new.process == old.process
        default:
            return false
        }
    }
}

/// `host:port` of an upstream, when it is not the connection's original destination.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `host:port`, `a.b.c.d:port` or `[v6]:port`.
    public static func parse(_ text: String) -> Result<Endpoint, PolicyValueError> {
        let failure = PolicyValueError("'\(text)' is not host:port (write IPv6 as [addr]:port)")
        guard let colon = text.lastIndex(of: ":") else { return .failure(failure) }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard IPAddress(host) != nil, host.contains(":") else { return .failure(failure) }
        } else if host.contains(":") || host.isEmpty {
            return .failure(failure)
        }
        guard let port = UInt16(portText), port > 0 else {
            return .failure(PolicyValueError("'\(text)': port must be 1-65535"))
        }
        return .success(Endpoint(host: host, port: port))
    }
}
