/// One change to a discover guard's kernel elements (its sets `GUARD.ports`, `GUARD.hold`,
/// `GUARD.listen` and map `GUARD.divert`, docs/nftables.md), applied with others in one
/// transaction by `Firewall.change(table:discoverGuard:_:)`.
public struct DiscoveryChange: Hashable, Sendable, CustomStringConvertible {
    enum Action: Hashable, Sendable {
        case hold
        case divert(listen: UInt16)
        case release(listen: UInt16?)
    }

    /// The discovered XPUB's port.
    public let port: UInt16
    let action: Action

    /// A listener being classified: `port` joins `GUARD.ports` (fenced by the guard's allowlist)
    /// and `GUARD.hold` (new connections from outside wait: their SYN is dropped and retried).
    public static func hold(_ port: UInt16) -> Self { Self(port: port, action: .hold) }

    /// A classified XPUB's broker is listening: `GUARD.divert[port] = listen`, `listen` joins
    /// `GUARD.listen`, `port` leaves `GUARD.hold` (and joins `GUARD.ports` if absent). A listen
    /// port the map held for `port` before leaves `GUARD.listen`.
    public static func divert(_ port: UInt16, to listen: UInt16) -> Self { Self(port: port, action: .divert(listen: listen)) }

    /// The listener is gone, or not an XPUB: `port` leaves all four, and so does its listen port
    /// (`listen`, or the one the map holds for `port`).
    public static func release(_ port: UInt16, listen: UInt16?) -> Self { Self(port: port, action: .release(listen: listen)) }

    /// `hold 5557`, `divert 5557 to 40123`, `release 5557 (listen 40123)`, for logs.
    public var description: String {
        switch action {
        case .hold: return "hold \(port)"
        case .divert(let listen): return "divert \(port) to \(listen)"
        case .release(let listen): return "release \(port)" + (listen.map { " (listen \($0))" } ?? "")
        }
    }
}

/// What a discover guard's four run-time sets hold. Pure: `applying` says what they should hold
/// after some changes, `edits(to:)` which elements that adds and deletes, so that a change never
/// adds an element the kernel holds or deletes one it does not (`NFTNetlink` reads them first).
struct DiscoveryElements: Hashable, Sendable {
    var ports: Set<UInt16> = []
    var hold: Set<UInt16> = []
    var divert: [UInt16: UInt16] = [:]
    var listen: Set<UInt16> = []

    /// The elements after `changes`, in order.
    func applying(_ changes: [DiscoveryChange]) -> DiscoveryElements {
        var out = self
        for change in changes {
            let port = change.port
            switch change.action {
            case .hold:
                out.ports.insert(port)
                out.hold.insert(port)
            case .divert(let listen):
                // A port diverted to a new broker: the old broker's listen port goes, unless shared.
                if let old = out.divert[port], old != listen, !out.divert.contains(where: { $0.key != port && $0.value == old }) {
                    out.listen.remove(old)
                }
                out.ports.insert(port)
                out.hold.remove(port)
                out.divert[port] = listen
                out.listen.insert(listen)
            case .release(let listen):
                if let gone = listen ?? out.divert[port] { out.listen.remove(gone) }
                out.ports.remove(port)
                out.hold.remove(port)
                out.divert[port] = nil
            }
        }
        return out
    }

    /// One set's (or the map's) elements to delete and to add; a map entry whose listen port
    /// changes is deleted and added again.
    struct Edit: Hashable {
        enum Target: Hashable, CaseIterable { case ports, hold, divert, listen }
        /// A port, and in the map the listen port it maps to.
        struct Element: Hashable {
            var key: UInt16
            var data: UInt16?
        }
        var target: Target
        var removed: [Element]
        var added: [Element]
    }

    /// The edits that turn these elements into `new`, one per set that differs, keys ascending.
    func edits(to new: DiscoveryElements) -> [Edit] {
        func plain(_ target: Edit.Target, _ old: Set<UInt16>, _ new: Set<UInt16>) -> Edit {
            Edit(
                target: target, removed: old.subtracting(new).sorted().map { Edit.Element(key: $0) },
                added: new.subtracting(old).sorted().map { Edit.Element(key: $0) })
        }
        let divertEdit = Edit(
            target: .divert,
            removed: divert.filter { new.divert[$0.key] != $0.value }.sorted { $0.key < $1.key }.map { Edit.Element(key: $0.key, data: $0.value) },
            added: new.divert.filter { divert[$0.key] != $0.value }.sorted { $0.key < $1.key }.map { Edit.Element(key: $0.key, data: $0.value) })
        return [plain(.ports, ports, new.ports), plain(.hold, hold, new.hold), divertEdit, plain(.listen, listen, new.listen)]
            .filter { !$0.removed.isEmpty || !$0.added.isEmpty }
    }
}

extension DiscoveryElements {
    /// nft commands that put these elements back into discover guard `guardName`'s sets of a
    /// table just made (in the transaction that replaces the table: `Firewall.apply`).
    func restoreScript(guardName: String, table: String) -> String {
        func add(_ set: String, _ elements: [String]) -> String {
            elements.isEmpty ? "" : "add element inet \(table) \(set) { \(elements.joined(separator: ", ")) }\n"
        }
        return add(NameScheme.discoveredPortsSet(guardName), ports.sorted().map { "\($0)" })
            + add(NameScheme.holdSet(guardName), hold.sorted().map { "\($0)" })
            + add(NameScheme.divertMap(guardName), divert.sorted { $0.key < $1.key }.map { "\($0.key) : \($0.value)" })
            + add(NameScheme.listenSet(guardName), listen.sorted().map { "\($0)" })
    }

    /// The same elements as changes for `Firewall.change`, for when the script could not go in
    /// the replacing transaction.
    var changes: [DiscoveryChange] {
        ports.sorted().map { port in divert[port].map { .divert(port, to: $0) } ?? .hold(port) }
    }
}
