import CNFTNetlink

#if canImport(Glibc)
import Glibc
#endif

/// A discover guard's run-time sets over netlink: read, and changed in one transaction, fast
/// enough to run between a listen(2) and the first reader's SYN (docs/nftables.md).
extension NFTNetlink {
    /// The set (or map) of `guardName` that `target` names.
    static func setName(_ target: DiscoveryElements.Edit.Target, _ guardName: String) -> String {
        switch target {
        case .ports: return NameScheme.discoveredPortsSet(guardName)
        case .hold: return NameScheme.holdSet(guardName)
        case .divert: return NameScheme.divertMap(guardName)
        case .listen: return NameScheme.listenSet(guardName)
        }
    }

    /// What the four run-time sets of `guardName` hold now.
    func discovered(guardName: String, table: String) throws(FirewallError) -> DiscoveryElements {
        try withDiscoverySocket { socket throws(FirewallError) in try Self.discovered(guardName: guardName, table: table, on: socket) }
    }

    /// Applies `changes` in one transaction. The sets are read first and only the difference is
    /// sent, so releasing a port the kernel no longer holds or holding one it holds is no error
    /// (a delete of an absent element fails a whole nf_tables transaction; an add without
    /// `NLM_F_EXCL` of a present one does not).
    func change(guardName: String, table: String, _ changes: [DiscoveryChange]) throws(FirewallError) {
        guard !changes.isEmpty else { return }
        try withDiscoverySocket { socket throws(FirewallError) in
            let now = try Self.discovered(guardName: guardName, table: table, on: socket)
            let edits = now.edits(to: now.applying(changes))
            /// As netlink carries a port: two bytes, network order.
            func raw(_ element: DiscoveryElements.Edit.Element) -> RawElement {
                RawElement(key: Self.portBytes(element.key), data: element.data.map(Self.portBytes))
            }
            func messages(_ type: nf_tables_msg_types, _ part: KeyPath<DiscoveryElements.Edit, [DiscoveryElements.Edit.Element]>) -> [ElementMessage] {
                edits.filter { !$0[keyPath: part].isEmpty }.map {
                    ElementMessage(type: type, set: Self.setName($0.target, guardName), elements: ArraySlice($0[keyPath: part].map(raw)))
                }
            }
            // Deletes first, so that a map entry whose listen port changes is replaced.
            try Self.commit(
                messages(NFT_MSG_DELSETELEM, \.removed) + messages(NFT_MSG_NEWSETELEM, \.added), table: table, exclusive: false,
                on: socket)
        }
    }

    /// Runs `body` on the kept discovery socket, opening it if needed; after a failure the socket
    /// is closed, so that no unread reply is taken for the next request's.
    private func withDiscoverySocket<T>(_ body: (OpaquePointer) throws(FirewallError) -> T) throws(FirewallError) -> T {
        let result: Result<T, FirewallError> = discoverySocket.withLock { kept in
            do throws(FirewallError) {
                if kept.socket == nil { kept.socket = try Self.openSocket() }
                guard let socket = kept.socket else { throw Self.failure("no netlink socket") }
                return .success(try body(socket))
            } catch {
                if let socket = kept.socket { mnl_socket_close(socket) }
                kept.socket = nil
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func discovered(guardName: String, table: String, on socket: OpaquePointer) throws(FirewallError) -> DiscoveryElements {
        /// The ports of one set, and the listen port each maps to (the map only).
        func read(_ target: DiscoveryElements.Edit.Target) throws(FirewallError) -> [UInt16: UInt16?] {
            var out: [UInt16: UInt16?] = [:]
            for element in try dump(setName(target, guardName), table: table, on: socket) {
                guard let port = port(element.key) else { continue }
                out[port] = element.data.flatMap(self.port)
            }
            return out
        }
        return DiscoveryElements(
            ports: Set(try read(.ports).keys), hold: Set(try read(.hold).keys),
            divert: try read(.divert).compactMapValues { $0 }, listen: Set(try read(.listen).keys))
    }

    static func portBytes(_ port: UInt16) -> [UInt8] { [UInt8(port >> 8), UInt8(port & 0xff)] }

    static func port(_ bytes: [UInt8]) -> UInt16? {
        bytes.count == 2 ? UInt16(bytes[0]) << 8 | UInt16(bytes[1]) : nil
    }
}
