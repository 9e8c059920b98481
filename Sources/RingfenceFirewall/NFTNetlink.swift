import CNFTNetlink
import RingfenceAddresses
import RingfenceSockets
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

    /// The changes that make the two sets of each guard in `allowlists` (by name) in `table` hold
    /// exactly its addresses, worked out against what the kernel holds now; one per set that differs.
    /// - Throws: `FirewallError` when a set cannot be read (it does not exist, say).
    func changes(to allowlists: [String: AddressSet], table: String) throws(FirewallError) -> [SetChange] {
        var out: [SetChange] = []
        for wanted in SetChange.sets(of: allowlists) {
            let held = try elements(of: wanted.name, table: table)
            if let change = SetChange.between(held, wanted.elements, set: wanted.name) { out.append(change) }
        }
        return out
    }

    /// The elements `set` of `table` holds, in the order `SetElement.elements` lists them.
    func elements(of set: String, table: String) throws(FirewallError) -> [SetElement] {
        let socket = try Self.openSocket()
        defer { mnl_socket_close(socket) }
        var request = [UInt8](repeating: 0, count: 4096)
        let sequence = UInt32(truncatingIfNeeded: time(nil))
        guard let query = nftnl_set_alloc() else { throw Self.failure("out of memory") }
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
        guard sent > 0 else { throw Self.failure("cannot ask for set \(set): \(String(cString: strerror(errno)))") }
        var found: [SetElement] = []
        var refusal: Int32 = 0
        try Self.receive(on: socket) { header in
            switch Int32(header.pointee.nlmsg_type) {
            case NLMSG_DONE:
                return true
            case NLMSG_ERROR:
                refusal = -mnl_nlmsg_get_payload(header).assumingMemoryBound(to: nlmsgerr.self).pointee.error
                return true
            default:
                found += Self.parseElements(header)
                return false
            }
        }
        guard refusal == 0 else {
            throw FirewallError(kind: .rejected, detail: "cannot read set \(set): \(String(cString: strerror(refusal)))")
        }
        return found.sorted { ($0.key, $0.isIntervalEnd ? 0 : 1) < ($1.key, $1.isIntervalEnd ? 0 : 1) }
    }

    /// The elements of one NEWSETELEM message of a dump.
    private static func parseElements(_ header: UnsafeMutablePointer<nlmsghdr>) -> [SetElement] {
        guard let set = nftnl_set_alloc() else { return [] }
        defer { nftnl_set_free(set) }
        guard nftnl_set_elems_nlmsg_parse(header, set) >= 0, let iterator = nftnl_set_elems_iter_create(set) else {
            return []
        }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        var out: [SetElement] = []
        while let item = nftnl_set_elems_iter_next(iterator) {
            var length: UInt32 = 0
            guard let key = nftnl_set_elem_get(item, UInt16(NFTNL_SET_ELEM_KEY), &length), length == 4 || length == 16
            else { continue }
            let value = UnsafeRawBufferPointer(start: key, count: Int(length)).reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
            let flags =
                nftnl_set_elem_is_set(item, UInt16(NFTNL_SET_ELEM_FLAGS)) ? nftnl_set_elem_get_u32(item, UInt16(NFTNL_SET_ELEM_FLAGS)) : 0
            out.append(
                SetElement(
                    key: value, byteCount: Int(length), isIntervalEnd: flags & NFT_SET_ELEM_INTERVAL_END.rawValue != 0,
                    isOpenInterval: false))
        }
        return out
    }

    /// Applies `changes` to sets of `table` (family `inet`) in one transaction.
    /// - Throws: `FirewallError` with the kernel's reason and the set it concerned.
    func commit(_ changes: [SetChange], table: String) throws(FirewallError) {
        guard !changes.isEmpty else { return }
        let socket = try Self.openSocket()
        defer { mnl_socket_close(socket) }
        guard let batch = nftnl_batch_alloc(Self.pageSize, Self.pageSize) else { throw Self.failure("out of memory") }
        defer { nftnl_batch_free(batch) }

        var sequence = UInt32(truncatingIfNeeded: time(nil))
        // The set each message concerns, by its sequence number, to say which one the kernel refused.
        var subjects: [UInt32: String] = [:]
        nftnl_batch_begin(nftnl_batch_buffer(batch), sequence)
        sequence &+= 1
        guard nftnl_batch_update(batch) == 0 else { throw Self.failure("out of memory") }
        for change in changes {
            var messages: [(type: nf_tables_msg_types, elements: ArraySlice<SetElement>)] = []
            if change.flush { messages.append((NFT_MSG_DELSETELEM, [])) }
            messages += Self.chunks(change.removed).map { (NFT_MSG_DELSETELEM, $0) }
            messages += Self.chunks(change.added).map { (NFT_MSG_NEWSETELEM, $0) }
            for message in messages {
                try Self.append(message.type, message.elements, set: change.set, table: table, to: batch, sequence: sequence)
                subjects[sequence] = change.set
                sequence &+= 1
            }
        }
        nftnl_batch_end(nftnl_batch_buffer(batch), sequence)
        guard nftnl_batch_update(batch) == 0 else { throw Self.failure("out of memory") }
        try Self.send(batch, on: socket)
        try Self.awaitAcks(on: socket, count: subjects.count, subjects: subjects)
    }

    private static func chunks(_ elements: [SetElement]) -> [ArraySlice<SetElement>] {
        stride(from: 0, to: elements.count, by: elementsPerMessage).map {
            elements[$0..<min($0 + elementsPerMessage, elements.count)]
        }
    }

    /// One NEWSETELEM or DELSETELEM message; a DELSETELEM without elements empties the set.
    private static func append(
        _ type: nf_tables_msg_types, _ elements: ArraySlice<SetElement>, set name: String, table: String,
        to batch: OpaquePointer, sequence: UInt32
    ) throws(FirewallError) {
        guard let set = nftnl_set_alloc() else { throw failure("out of memory") }
        defer { nftnl_set_free(set) }
        nftnl_set_set_str(set, UInt16(NFTNL_SET_TABLE.rawValue), table)
        nftnl_set_set_str(set, UInt16(NFTNL_SET_NAME.rawValue), name)
        for element in elements {
            guard let item = nftnl_set_elem_alloc() else { throw failure("out of memory") }
            element.keyBytes.withUnsafeBytes { key in
                _ = nftnl_set_elem_set(item, UInt16(NFTNL_SET_ELEM_KEY), key.baseAddress, UInt32(key.count))
            }
            if element.isIntervalEnd {
                nftnl_set_elem_set_u32(item, UInt16(NFTNL_SET_ELEM_FLAGS), NFT_SET_ELEM_INTERVAL_END.rawValue)
            }
            if element.isOpenInterval { openIntervalMark(on: item) }
            nftnl_set_elem_add(set, item)
        }
        var flags = Int32(NLM_F_ACK)
        if type == NFT_MSG_NEWSETELEM { flags |= Int32(NLM_F_CREATE | NLM_F_EXCL) }
        let header = nftnl_nlmsg_build_hdr(
            nftnl_batch_buffer(batch).assumingMemoryBound(to: CChar.self), UInt16(type.rawValue),
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

    private static func send(_ batch: OpaquePointer, on socket: OpaquePointer) throws(FirewallError) {
        let descriptor = mnl_socket_get_fd(socket)
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
    private static func openSocket() throws(FirewallError) -> OpaquePointer {
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

    private static func failure(_ detail: String) -> FirewallError {
        FirewallError(kind: .rejected, detail: detail)
    }
}
