import RingfenceAddresses

/// Reads one `[[guard]]` table: the keys every guard has, then those of its kind.
struct GuardReader {
    /// The keys of each kind beyond `name`, `kind`, `port` and `allow`, so that a key of another
    /// kind is reported as such rather than as a plain typo.
    static let kindKeys: [Guard.Kind: [String]] = [
        .firewall: ["ports"],
        .host: ["public"],
        .tcp: [
            "listen_port", "upstream", "max_connections", "max_connections_per_peer", "accept_rate_per_peer",
            "buffer_bytes", "connect_timeout", "idle_timeout", "protocol", "busy_poll", "handshake_timeout", "partial_timeout",
            "max_key_bytes", "max_value_bytes", "max_keys", "ban_after", "ban_window", "ban_for",
        ],
        .zmqXPUB: [
            "listen_port", "upstream", "max_subscribers", "max_subscribers_per_peer", "max_subscriptions_per_peer",
            "max_topic_bytes", "max_message_bytes", "hwm_messages", "hwm_bytes", "on_overflow", "max_stall", "handshake_timeout",
            "busy_poll", "discover", "process", "accept_rate_per_peer", "ban_after", "ban_window", "ban_for",
        ],
    ]

    /// Keys that only mean something with `protocol = "tcpstore"`.
    static let tcpstoreKeys = ["handshake_timeout", "partial_timeout", "max_key_bytes", "max_value_bytes", "max_keys"]

    private var reader: TableReader
    /// A host guard's public ports, each with its index in `public` as written, for positions
    /// of problems found later against other guards.
    private(set) var publicIndices: [UInt16: Int] = [:]
    private var sink: DiagnosticSink { reader.sink }
    private var path: String { reader.path }

    init(_ reader: TableReader) { self.reader = reader }

    mutating func read(groups: inout PeerGroups) -> Guard? {
        reader.requireKey("name", "")
        reader.requireKey("kind", " (\"firewall\", \"tcp\", \"zmq-xpub\" or \"host\")")
        reader.requireKey("allow", " (the peers allowed in; [] admits nobody)")
        var name = reader.string("name")
        if let given = name, !PolicyParser.isIdentifier(given, extra: "_-", maxLength: 32) {
            sink.report(reader.keyPath("name"), "'\(given)' is not a valid guard name (a letter, then letters, digits, _ or -; at most 32)")
            name = nil
        }
        let kind: Guard.Kind? = reader.choice("kind")
        let mode: Guard.Mode = reader.choice("mode", default: .enforce)
        let allowEntries = reader.stringArray("allow") ?? []
        let allowed = groups.resolveList(allowEntries.map { (index: $0.index, entry: $0.value) }, path: reader.keyPath("allow"))
        let allow = allowed.addresses

        guard let kind else {
            // Without a kind the other keys cannot be judged; the missing or bad kind is reported.
            return nil
        }
        let discover = kind == .zmqXPUB && reader.bool("discover", default: false)
        let ports = discover ? readNoPorts() : readPorts(kind)
        let settings: Guard.Settings?
        switch kind {
        case .firewall: settings = .firewall
        case .tcp: settings = ports.first.flatMap { readRelay(port: $0) }.map { .relay($0) }
        case .zmqXPUB:
            settings = (discover ? readDiscoverBroker() : ports.first.flatMap { readBroker(port: $0) }).map { .broker($0) }
        case .host: settings = readHost().map { .host($0) }
        }
        if kind == .zmqXPUB && !discover && reader.has("process") {
            _ = reader.raw("process")
            sink.report(reader.keyPath("process"), "'process' only applies with discover = true; add it, or remove 'process'")
        }
        let strikes = kind == .tcp || kind == .zmqXPUB ? readStrikes() : StrikeSettings()
        reader.reportUnknownKeys("a guard of kind \"\(kind.rawValue)\"", elsewhere: Self.foreignKeys(for: kind))
        guard let name, let settings, !ports.isEmpty || kind == .host || discover else { return nil }
        var made = Guard(
            name: name, ports: ports, allow: allow, allowEntries: allowEntries.map(\.value), settings: settings, mode: mode)
        made.strikes = strikes
        made.allowNames = allowed.names.sorted()
        return made
    }

    /// `ban_after`, `ban_window` and `ban_for`, for relay and broker guards.
    private mutating func readStrikes() -> StrikeSettings {
        var strikes = StrikeSettings()
        strikes.banAfter = reader.int("ban_after", default: strikes.banAfter, in: 0...1_000_000)
        let window = reader.duration("ban_window", default: strikes.banWindow)
        if window > StrikeSettings.maxWindow {
            sink.report(
                reader.keyPath("ban_window"),
                "\(PolicyDuration.format(window)) is more than \(PolicyDuration.format(StrikeSettings.maxWindow)); "
                    + "strikes that far apart are no storm")
        } else {
            strikes.banWindow = window
        }
        strikes.banFor = reader.parsed("ban_for", default: strikes.banFor, expected: "a duration such as \"60s\"", BanDuration.parse)
        return strikes
    }

    /// `port` for every kind; `ports = [..]` as an alternative for `firewall`; none for `host`,
    /// which fences every port.
    private mutating func readPorts(_ kind: Guard.Kind) -> [UInt16] {
        if kind == .host {
            for key in ["port", "ports"] where reader.has(key) {
                _ = reader.raw(key)
                sink.report(
                    reader.keyPath(key),
                    "a host guard fences every port of the host and takes no '\(key)'; list the ports open to everyone in 'public'")
            }
            return []
        }
        if kind == .firewall && reader.has("ports") {
            if reader.has("port") {
                _ = reader.raw("port")
                sink.report(reader.keyPath("ports"), "give either 'port' or 'ports', not both")
                return []
            }
            return reader.portArray("ports", allowEmpty: false) ?? []
        }
        reader.requireKey("port", kind == .firewall ? " (or 'ports = [..]')" : "")
        return reader.port("port").map { [$0] } ?? []
    }

    /// A discover guard's ports are found at run time: `port` is an error.
    private mutating func readNoPorts() -> [UInt16] {
        if reader.has("port") {
            _ = reader.raw("port")
            sink.report(
                reader.keyPath("port"),
                "give either 'port' or 'discover = true', not both (a discover guard brokers every XPUB it finds)")
        }
        return []
    }

    /// The settings of a `discover = true` guard: no `listen_port` or `upstream` (each discovered
    /// XPUB's broker gets an ephemeral listen port and the listener's own address as upstream),
    /// and an optional non-empty `process` filter.
    private mutating func readDiscoverBroker() -> BrokerSettings? {
        let reasons = [
            "listen_port": "each discovered XPUB's broker listens on an ephemeral port",
            "upstream": "each discovered XPUB's broker connects to the listener's own address",
        ]
        var valid = true
        for key in ["listen_port", "upstream"] where reader.has(key) {
            _ = reader.raw(key)
            sink.report(reader.keyPath(key), "a discover guard takes no '\(key)': \(reasons[key]!); remove it")
            valid = false
        }
        var process: String?
        if reader.has("process") {
            process = reader.string("process")
            if process?.isEmpty == true {
                sink.report(reader.keyPath("process"), "'process' is empty; give text of the command line, or remove it")
                valid = false
            }
        }
        guard var broker = readBroker(port: nil) else { return nil }
        broker.discover = true
        broker.process = process
        return valid ? broker : nil
    }

    /// `public = [..]`: ports open to everyone, sorted; a missing key means none. Leaving the SSH
    /// port closed is allowed but warned about: it locks out every operator outside `allow`.
    private mutating func readHost() -> HostSettings? {
        let given = reader.has("public")
        guard let indexed = given ? reader.portArrayWithIndices("public", allowEmpty: true) : [] else { return nil }
        let ports = indexed.map(\.port)
        publicIndices = Dictionary(indexed.map { ($0.port, $0.index) }, uniquingKeysWith: { first, _ in first })
        if !ports.contains(HostSettings.sshPort) {
            sink.warn(
                given ? reader.keyPath("public") : reader.keyPath("kind"),
                "port 22 is not public: SSH from any address outside this guard's allow will be refused (add 22 to 'public' unless that is meant)")
        }
        return HostSettings(publicPorts: ports)
    }

    private mutating func readListenPort(port: UInt16) -> UInt16? {
        if reader.has("listen_port") { return reader.port("listen_port") }
        guard port <= 55535 else {
            sink.report(reader.keyPath("port"), "the default listen_port (port + 10000) does not exist for port \(port); set listen_port")
            return nil
        }
        return port + 10000
    }

    private mutating func readUpstream() -> Endpoint? {
        guard reader.has("upstream") else { return nil }
        return reader.parsed("upstream", default: Endpoint?.none) { Endpoint.parse($0).map { $0 } }
    }

    private mutating func readRelay(port: UInt16) -> RelaySettings? {
        guard let listenPort = readListenPort(port: port) else { return nil }
        var relay = RelaySettings(listenPort: listenPort)
        relay.upstream = readUpstream()
        relay.maxConnections = reader.int("max_connections", default: relay.maxConnections, in: 1...1_000_000)
        relay.maxConnectionsPerPeer = reader.int(
            "max_connections_per_peer", default: relay.maxConnectionsPerPeer, in: 1...1_000_000)
        relay.acceptRatePerPeer = reader.int("accept_rate_per_peer", default: relay.acceptRatePerPeer, in: 1...1_000_000)
        relay.bufferBytes = reader.size("buffer_bytes", default: relay.bufferBytes, atLeast: .kibibytes(4))
        relay.connectTimeout = reader.duration("connect_timeout", default: relay.connectTimeout)
        relay.idleTimeout = reader.duration("idle_timeout", default: relay.idleTimeout, allowZero: true)
        relay.appProtocol = reader.choice("protocol", default: relay.appProtocol)
        relay.busyPoll = readBusyPoll(
            default: relay.appProtocol == .tcpstore ? RelaySettings.defaultTCPStoreBusyPoll : .zero)
        relay.handshakeTimeout = reader.duration("handshake_timeout", default: relay.handshakeTimeout)
        relay.partialTimeout = reader.duration("partial_timeout", default: relay.partialTimeout)
        relay.maxKeyBytes = reader.size("max_key_bytes", default: relay.maxKeyBytes)
        relay.maxValueBytes = reader.size("max_value_bytes", default: relay.maxValueBytes)
        relay.maxKeys = reader.int("max_keys", default: relay.maxKeys, in: 1...131_072)
        if relay.maxKeyBytes.bytes > 8192 {
            sink.report(reader.keyPath("max_key_bytes"), "\(relay.maxKeyBytes) is above TCPStore's own limit of 8KiB")
        }
        if relay.maxValueBytes > .mebibytes(8) {
            sink.report(reader.keyPath("max_value_bytes"), "\(relay.maxValueBytes) is above TCPStore's own limit of 8MiB")
        }
        if relay.appProtocol == .none {
            for key in Self.tcpstoreKeys where reader.has(key) {
                sink.report(reader.keyPath(key), "'\(key)' only applies with protocol = \"tcpstore\"")
            }
        }
        return relay
    }

    /// `busy_poll`, for either kind: a duration from zero (off) to `RelaySettings.maxBusyPoll`.
    private mutating func readBusyPoll(default fallback: Duration) -> Duration {
        let value = reader.duration("busy_poll", default: fallback, allowZero: true)
        guard value <= RelaySettings.maxBusyPoll else {
            sink.report(
                reader.keyPath("busy_poll"),
                "\(PolicyDuration.format(value)) is more than \(PolicyDuration.format(RelaySettings.maxBusyPoll)); polling longer only costs CPU")
            return RelaySettings.maxBusyPoll
        }
        return value
    }

    /// - Parameter port: the guarded port; nil for a discover guard, which has neither a listen
    ///   port nor an upstream of its own (`readDiscoverBroker` judged those keys).
    private mutating func readBroker(port: UInt16?) -> BrokerSettings? {
        var broker = BrokerSettings(listenPort: 0)
        if let port {
            guard let listenPort = readListenPort(port: port) else { return nil }
            broker.listenPort = listenPort
            broker.upstream = readUpstream()
        }
        broker.maxSubscribers = reader.int("max_subscribers", default: broker.maxSubscribers, in: 1...100_000)
        broker.maxSubscribersPerPeer = reader.int(
            "max_subscribers_per_peer", default: broker.maxSubscribersPerPeer, in: 1...100_000)
        broker.acceptRatePerPeer = reader.int("accept_rate_per_peer", default: broker.acceptRatePerPeer, in: 1...1_000_000)
        broker.maxSubscriptionsPerPeer = reader.int(
            "max_subscriptions_per_peer", default: broker.maxSubscriptionsPerPeer, in: 1...100_000)
        broker.maxTopicBytes = reader.int("max_topic_bytes", default: broker.maxTopicBytes, in: 0...245)
        broker.maxMessageBytes = reader.size("max_message_bytes", default: broker.maxMessageBytes)
        broker.hwmMessages = reader.int("hwm_messages", default: broker.hwmMessages, in: 1...10_000_000)
        broker.hwmBytes = reader.size("hwm_bytes", default: broker.hwmBytes)
        broker.onOverflow = reader.choice("on_overflow", default: broker.onOverflow)
        broker.maxStall = reader.duration("max_stall", default: broker.maxStall)
        if broker.maxStall > BrokerSettings.maxMaxStall {
            sink.report(
                reader.keyPath("max_stall"),
                "\(PolicyDuration.format(broker.maxStall)) is more than \(PolicyDuration.format(BrokerSettings.maxMaxStall)); "
                    + "a reader that takes nothing for that long is gone, not slow")
            broker.maxStall = BrokerSettings.maxMaxStall
        }
        broker.handshakeTimeout = reader.duration("handshake_timeout", default: broker.handshakeTimeout)
        broker.busyPoll = readBusyPoll(default: broker.busyPoll)
        if broker.maxMessageBytes > broker.hwmBytes {
            // Blame the key the author wrote; with both written, the message cap.
            let key = reader.has("max_message_bytes") || !reader.has("hwm_bytes") ? "max_message_bytes" : "hwm_bytes"
            sink.report(
                reader.keyPath(key),
                "max_message_bytes (\(broker.maxMessageBytes)) is larger than hwm_bytes (\(broker.hwmBytes)): "
                    + "such a message could never be queued")
        }
        return broker
    }

    /// For a guard of `kind`: the keys that belong to the other kinds, and where.
    static func foreignKeys(for kind: Guard.Kind) -> [String: String] {
        var homes: [String: [String]] = [:]
        for other in Guard.Kind.allCases where other != kind {
            for key in kindKeys[other] ?? [] where !(kindKeys[kind] ?? []).contains(key) {
                homes[key, default: []].append("\"\(other.rawValue)\"")
            }
        }
        return homes.mapValues { "guards of kind " + $0.sorted().joined(separator: " and ") }
    }
}
