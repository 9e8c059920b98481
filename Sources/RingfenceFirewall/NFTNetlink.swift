import CNFTNetlink
import RingfenceAddresses
import RingfenceSockets
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reads and changes the elements of sets in Ringfence's table over netfilter netlink, through
/// libnftnl; changes go in one nf_tables transaction: every change takes effect, or none.
///
/// Why not `NFTables` (libnftables, nft's own language): to refill a set nft reads every element
/// back and re-evaluates the whole list in user space, about 130 ms for 10,000 CIDRs here, most of
/// a reload. This reads the set's elements as they are (about 10 ms for 20,000), works out the
/// difference from what the policy wants, and sends only that: a set changed by hand is put right
/// like any other. Deleting an element the kernel no longer holds, or adding one it holds (a set
/// changed in between), fails the whole transaction (`NLM_F_EXCL`), and the caller falls back to
/// nft. libnftnl builds and parses the messages; nothing else in Ringfence speaks netlink.
final class NFTNetlink {
    /// Elements per message: the element list is one netlink attribute, whose length is 16 bits.
    static let elementsPerMessage = 256
    private static let pageSize: UInt32 = 64 * 1024
    /// Below this many bytes of acks the socket's default receive buffer is left as it is.
    private static let defaultReceiveBuffer: Int32 = 208 * 1024

    /// The socket discovery changes go through, opened at the first and kept: closing a netfilter
    /// netlink socket after a transaction that deleted set elements took 8-13 ms here (kernel
    /// 6.18), ten times the change itself (docs/nftables.md).
    let discoverySocket = Mutex(KeptSocket())

    /// A libmnl socket, used only under `discoverySocket`'s lock.
    struct KeptSocket: @unchecked Sendable {
        var socket: OpaquePointer?
    }

    deinit {
        discoverySocket.withLock { kept in
            if let socket = kept.socket { mnl_socket_close(socket) }
        }
    }

    /// The changes that make the two sets of each guard in `allowlists` (by name) in `table` hold
    /// exactly its addresses, worked out against what the kernel holds now; one per set that differs.
    /// - Throws: `FirewallError` when a set cannot be read (it does not exist, say).
    /// - Parameter expected: what the sets should hold now (the allowlists last applied), if
    ///   known. A set shrinking from that to under half its size is flushed and filled without
    ///   reading it first (`SetChange.isFlush`): a flush is right whatever the set holds, and
    ///   reading a set of a million elements back took most of a minute (docs/reliability.md,
    ///   "Bad input at the edges").
    func changes(
        to allowlists: [String: AddressSet], table: String, expected: [String: AddressSet] = [:]
    ) throws(FirewallError) -> [SetChange] {
        let assumed = Dictionary(uniqueKeysWithValues: SetChange.sets(of: expected).map { ($0.name, $0.elements.count) })
        var out: [SetChange] = []
        for wanted in SetChange.sets(of: allowlists) {
            if let count = assumed[wanted.name], SetChange.isFlush(shrinkingFrom: count, to: wanted.elements.count) {
                out.append(SetChange(set: wanted.name, flush: true, removed: [], added: wanted.elements))
                continue
            }
            let held = try elements(of: wanted.name, table: table)
            if let change = SetChange.between(held, wanted.elements, set: wanted.name) { out.append(change) }
        }
        return out
    }

    /// The elements `set` of `table` holds, in the order `SetElement.elements` lists them.
    func elements(of set: String, table: String) throws(FirewallError) -> [SetElement] {
        let socket = try Self.openSocket()
        defer { mnl_socket_close(socket) }
        return try Self.dump(set, table: table, on: socket).compactMap { raw in
            guard raw.key.count == 4 || raw.key.count == 16 else { return nil }
            return SetElement(
                key: raw.key.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }, byteCount: raw.key.count,
                isIntervalEnd: raw.flags & NFT_SET_ELEM_INTERVAL_END.rawValue != 0, isOpenInterval: false)
        }.sorted { ($0.key, $0.isIntervalEnd ? 0 : 1) < ($1.key, $1.isIntervalEnd ? 0 : 1) }
    }

    /// One element as netlink carries it: its key and, in a map, its data, in network byte order.
    struct RawElement: Hashable {
        var key: [UInt8]
        var data: [UInt8]? = nil
        var flags: UInt32 = 0
        /// nft's "open interval" user-data mark (`SetElement.isOpenInterval`).
        var isOpenInterval = false
        /// The element's own timeout in milliseconds (an add to a set with `flags timeout`).
        var timeoutMilliseconds: UInt64? = nil
    }

    /// One NEWSETELEM or DELSETELEM message of a batch; a DELSETELEM without elements empties the set.
    struct ElementMessage {
        var type: nf_tables_msg_types
        var set: String
        var elements: ArraySlice<RawElement>
    }

    /// Every element `set` of `table` holds, read on `socket` (a GETSETELEM dump).
    static func dump(_ set: String, table: String, on socket: OpaquePointer) throws(FirewallError) -> [RawElement] {
        var request = [UInt8](repeating: 0, count: 4096)
        let sequence = UInt32(truncatingIfNeeded: time(nil))
        guard let query = nftnl_set_alloc() else { throw failure("out of memory") }
        defer { nftnl_set_free(query) }
        nftnl_set_set_str(query, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(query, UInt16(NFTNL_SET_NAME.rawValue), set)
        let sent = request.withUnsafeMutableBytes { raw in
            let header = nftnl_nlmsg_build_hdr(
                raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(NFT_MSG_GETSETELEM.rawValue),
                UInt16(NFPROTO_INET), UInt16(NLM_F_DUMP), sequence)!
            nftnl_set_elems_nlmsg_build_payload(header, query)
            return mnl_socket_sendto(socket, header, Int(header.pointee.nlmsg_len))
        }
        guard sent > 0 else { throw failure("cannot ask for set \(set): \(String(cString: strerror(errno)))") }
        var found: [RawElement] = []
        var refusal: Int32 = 0
        try receive(on: socket) { header in
            switch Int32(header.pointee.nlmsg_type) {
            case NLMSG_DONE:
                return true
            case NLMSG_ERROR:
                refusal = -mnl_nlmsg_get_payload(header).assumingMemoryBound(to: nlmsgerr.self).pointee.error
                return true
            default:
                found += parseElements(header)
                return false
            }
        }
        guard refusal == 0 else {
            throw FirewallError(kind: .rejected, detail: "cannot read set \(set): \(String(cString: strerror(refusal)))")
        }
        return found
    }

    /// The elements of one NEWSETELEM message of a dump.
    private static func parseElements(_ header: UnsafeMutablePointer<nlmsghdr>) -> [RawElement] {
        guard let set = nftnl_set_alloc() else { return [] }
        defer { nftnl_set_free(set) }
        guard nftnl_set_elems_nlmsg_parse(header, set) >= 0, let iterator = nftnl_set_elems_iter_create(set) else {
            return []
        }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        /// An attribute's bytes, nil when the element has none.
        func bytes(_ item: OpaquePointer, _ attribute: Int) -> [UInt8]? {
            var length: UInt32 = 0
            guard nftnl_set_elem_is_set(item, UInt16(attribute)),
                let value = nftnl_set_elem_get(item, UInt16(attribute), &length)
            else { return nil }
            return Array(UnsafeRawBufferPointer(start: value, count: Int(length)))
        }
        var out: [RawElement] = []
        while let item = nftnl_set_elems_iter_next(iterator) {
            guard let key = bytes(item, Int(NFTNL_SET_ELEM_KEY)) else { continue }
            let flags =
                nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_FLAGS)) ? nftnl_set_elem_get_u32(item, UInt16(NFTNL_SET_ELEM_FLAGS)) : 0
            out.append(RawElement(key: key, data: bytes(item, Int(NFTNL_SET_ELEM_DATA)), flags: flags))
        }
        return out
    }

    /// Applies `changes` to sets of `table` (family `inet`) in one transaction.
    /// - Throws: `FirewallError` with the kernel's reason and the set it concerned.
    func commit(_ changes: [SetChange], table: String) throws(FirewallError) {
        guard !changes.isEmpty else { return }
        /// As netlink carries them.
        func raw(_ elements: [SetElement]) -> [RawElement] {
            elements.map {
                RawElement(
                    key: $0.keyBytes, flags: $0.isIntervalEnd ? NFT_SET_ELEM_INTERVAL_END.rawValue : 0,
                    isOpenInterval: $0.isOpenInterval)
            }
        }
        var messages: [ElementMessage] = []
        for change in changes {
            if change.flush { messages.append(ElementMessage(type: NFT_MSG_DELSETELEM, set: change.set, elements: [])) }
            messages += Self.chunks(raw(change.removed)).map { ElementMessage(type: NFT_MSG_DELSETELEM, set: change.set, elements: $0) }
            messages += Self.chunks(raw(change.added)).map { ElementMessage(type: NFT_MSG_NEWSETELEM, set: change.set, elements: $0) }
        }
        let socket = try Self.openSocket()
        defer { mnl_socket_close(socket) }
        try Self.commit(messages, table: table, exclusive: true, on: socket)
    }

    /// Sends `messages` as one batch (one transaction) on `socket` and waits for every ack.
    /// - Parameter exclusive: adds carry `NLM_F_EXCL`, so that adding an element the set holds
    ///   fails the transaction; without it such an add is a no-op.
    static func commit(
        _ messages: [ElementMessage], table: String, exclusive: Bool, on socket: OpaquePointer
    ) throws(FirewallError) {
        guard !messages.isEmpty else { return }
        guard let batch = nftnl_batch_alloc(pageSize, pageSize) else { throw failure("out of memory") }
        defer { nftnl_batch_free(batch) }
        var sequence = UInt32(truncatingIfNeeded: time(nil))
        // The set each message concerns, by its sequence number, to say which one the kernel refused.
        var subjects: [UInt32: String] = [:]
        nftnl_batch_begin(nftnl_batch_buffer(batch), sequence)
        sequence &+= 1
        guard nftnl_batch_update(batch) == 0 else { throw failure("out of memory") }
        for message in messages {
            try append(message, table: table, exclusive: exclusive, to: batch, sequence: sequence)
            subjects[sequence] = message.set
            sequence &+= 1
        }
        nftnl_batch_end(nftnl_batch_buffer(batch), sequence)
        guard nftnl_batch_update(batch) == 0 else { throw failure("out of memory") }
        try send(batch, on: socket, acks: subjects.count)
        try awaitAcks(on: socket, count: subjects.count, subjects: subjects)
    }

    private static func chunks(_ elements: [RawElement]) -> [ArraySlice<RawElement>] {
        stride(from: 0, to: elements.count, by: elementsPerMessage).map {
            elements[$0..<min($0 + elementsPerMessage, elements.count)]
        }
    }

    /// One NEWSETELEM or DELSETELEM message.
    private static func append(
        _ message: ElementMessage, table: String, exclusive: Bool, to batch: OpaquePointer, sequence: UInt32
    ) throws(FirewallError) {
        guard let set = nftnl_set_alloc() else { throw failure("out of memory") }
        defer { nftnl_set_free(set) }
        nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), message.set)
        for element in message.elements {
            guard let item = nftnl_set_elem_alloc() else { throw failure("out of memory") }
            element.key.withUnsafeBytes { key in
                _ = nftnl_set_elem_set(item, UInt16(NFTNL_SET_ELEM_KEY), key.baseAddress, UInt32(key.count))
            }
            if let data = element.data {
                data.withUnsafeBytes { value in
                    _ = nftnl_set_elem_set(item, UInt16(NFTNL_SET_ELEM_DATA), value.baseAddress, UInt32(value.count))
                }
            }
            if element.flags != 0 { nftnl_set_elem_set_u32(item, UInt16(NFTNL_SET_ELEM_FLAGS), element.flags) }
            if let timeout = element.timeoutMilliseconds { nftnl_set_elem_set_u64(item, UInt16(NFTNL_SET_ELEM_TIMEOUT), timeout) }
            if element.isOpenInterval { openIntervalMark(on: item) }
            nftnl_set_elem_add(set, item)
        }
        var flags = Int32(NLM_F_ACK)
        if message.type == NFT_MSG_NEWSETELEM { flags |= Int32(NLM_F_CREATE) | (exclusive ? Int32(NLM_F_EXCL) : 0) }
        let header = nftnl_nlmsg_build_hdr(
            nftnl_batch_buffer(batch).assumingMemoryBound(to: CChar.self), UInt16(message.type.rawValue),
            UInt16(NFPROTO_INET), UInt16(flags), sequence)
        nftnl_set_elems_nlmsg_build_payload(header, set)
        guard nftnl_batch_update(batch) == 0 else { throw failure("out of memory") }
    }

    /// nft's user-data mark for an interval with no end element (`NFTNL_SET_ELEM_F_INTERVAL_OPEN`).
    private static func openIntervalMark(on item: OpaquePointer) {
        guard let data = nftnl_udata_buf_alloc(64) else { return }
        defer { nftnl_udata_buf_free(data) }
        nftnl_udata_put_u32(data, UInt8(NFTNL_UDATA_SET_ELEM_FLAGS.rawValue), NFTNL_SET_ELEM_F_INTERVAL_OPEN.rawValue)
        nftnl_set_elem_set(
            item, UInt16(NFTNL_SET_ELEM_USERDATA), nftnl_udata_buf_data(data), nftnl_udata_buf_len(data))
    }

    /// Room for one ack in the receive buffer: what the kernel charges for a small skb, with margin.
    private static let bytesPerAck = 1024

    private static func send(_ batch: OpaquePointer, on socket: OpaquePointer, acks: Int) throws(FirewallError) {
        let descriptor = mnl_socket_get_fd(socket)
        // The kernel runs the whole batch before this reads a reply, so every message's ack must
        // fit the receive buffer at once: a million CIDRs are ~8,000 messages, whose acks
        // overflowed the default buffer (ENOBUFS, acks lost, the transaction's outcome unknown).
        let room = Int32(clamping: acks * bytesPerAck + 64 * 1024)
        if room > Self.defaultReceiveBuffer { try? Posix.setOption(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, room) }
        let count = Int(nftnl_batch_iovec_len(batch))
        var vectors = [iovec](repeating: iovec(), count: count)
        nftnl_batch_iovec(batch, &vectors, UInt32(count))
        // The batch goes in one datagram; the kernel refuses one larger than the send buffer.
        let length = Int32(vectors.reduce(0) { $0 + $1.iov_len } + 4096)
        try? Posix.setOption(descriptor, SOL_SOCKET, SO_SNDBUFFORCE, length)
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = withUnsafeMutableBytes(of: &kernel) { address in
            Result { () throws(Errno) in try Posix.sendDatagram(descriptor, vectors, to: address) }
        }
        switch sent {
        case .success(.done): return
        case .success(.wouldBlock): throw failure("cannot send the set update: \(Errno.resourceTemporarilyUnavailable)")
        case .failure(let error): throw failure("cannot send the set update: \(error)")
        }
    }

    /// Reads one reply per message; the transaction committed only if none is an error.
    private static func awaitAcks(on socket: OpaquePointer, count: Int, subjects: [UInt32: String]) throws(FirewallError) {
        var replies = 0
        var refusals: [String] = []
        try receive(on: socket) { header in
            guard header.pointee.nlmsg_type == UInt16(NLMSG_ERROR) else { return false }
            replies += 1
            let error = mnl_nlmsg_get_payload(header).assumingMemoryBound(to: nlmsgerr.self).pointee.error
            if error != 0 {
                let set = subjects[header.pointee.nlmsg_seq] ?? "?"
                refusals.append("set \(set): \(String(cString: strerror(-error)))")
            }
            return replies == count
        }
        guard refusals.isEmpty else { throw FirewallError(kind: .rejected, detail: refusals.joined(separator: "\n")) }
    }

    /// A netfilter netlink socket whose acks carry no copy of the request (an error then fits a
    /// small buffer) and whose reads give up after 5 s.
    static func openSocket() throws(FirewallError) -> OpaquePointer {
        guard let socket = mnl_socket_open(NETLINK_NETFILTER) else {
            throw failure("cannot open a netlink socket: \(String(cString: strerror(errno)))")
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            mnl_socket_close(socket)
            throw failure("cannot bind a netlink socket: \(String(cString: strerror(errno)))")
        }
        let descriptor = mnl_socket_get_fd(socket)
        try? Posix.setOption(descriptor, SOL_NETLINK, NETLINK_CAP_ACK, 1)
        Posix.setReceiveTimeout(descriptor, .seconds(5))
        return socket
    }

    /// Hands each message addressed to `socket` to `body`, reading on until `body` says done.
    private static func receive(
        on socket: OpaquePointer, _ body: (UnsafeMutablePointer<nlmsghdr>) -> Bool
    ) throws(FirewallError) {
        let portID = mnl_socket_get_portid(socket)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var done = false
        while !done {
            let received = buffer.withUnsafeMutableBytes { mnl_socket_recvfrom(socket, $0.baseAddress, $0.count) }
            guard received > 0 else {
                throw failure("no answer from the kernel: \(String(cString: strerror(errno)))")
            }
            buffer.withUnsafeMutableBytes { raw in
                var remaining = Int32(received)
                var header = raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self)
                while !done && mnl_nlmsg_ok(header, remaining) {
                    if header.pointee.nlmsg_pid == portID { done = body(header) }
                    header = mnl_nlmsg_next(header, &remaining)
                }
            }
        }
    }

    static func failure(_ detail: String) -> FirewallError {
        FirewallError(kind: .rejected, detail: detail)
    }
}
