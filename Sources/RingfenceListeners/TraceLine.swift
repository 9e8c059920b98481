/// One `sock:inet_sock_set_state` record as `trace_pipe` prints it (pure parsing, no I/O;
/// docs/listeners.md §2):
///
///     python3-31437 [001] ..... 2634.728801: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP
///     sport=34353 dport=0 saddr=127.0.0.1 daddr=0.0.0.0 saddrv6=::ffff:127.0.0.1 daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_LISTEN
///
/// (one line). Anything else, or a malformed record, parses to nil.
struct TraceLine: Equatable {
    /// The task that changed the state: for listen(2) and close(2), the thread that called it.
    var pid: Int32
    /// 2 (AF_INET) or 10 (AF_INET6): the socket's family.
    var family: Int32
    var port: UInt16
    var oldState: String
    var newState: String

    var isListen: Bool { newState == "TCP_LISTEN" }
    var isUnlisten: Bool { oldState == "TCP_LISTEN" && newState != "TCP_LISTEN" }

    init(pid: Int32, family: Int32, port: UInt16, oldState: String, newState: String) {
        self.pid = pid
        self.family = family
        self.port = port
        self.oldState = oldState
        self.newState = newState
    }

    init?(_ line: Substring) {
        let marker = ": inet_sock_set_state: "
        guard let split = line.firstRange(of: marker) else { return nil }
        // The header, from the right: TIMESTAMP, FLAGS, [CPU], optionally (TGID), then COMM-PID;
        // the command may hold spaces and dashes, the pid follows the last dash.
        var header = line[..<split.lowerBound].split(separator: " ")
        guard header.count >= 4 else { return nil }
        header.removeLast(3)
        if header.last?.hasSuffix(")") == true {  // "(  TGID)" with the record-tgid option.
            while let last = header.popLast(), !last.hasPrefix("(") {}
        }
        guard let task = header.last, let dash = task.lastIndex(of: "-"),
              let pid = Int32(task[task.index(after: dash)...])
        else { return nil }
        var fields: [Substring: Substring] = [:]
        for pair in line[split.upperBound...].split(separator: " ") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            fields[pair[..<equals]] = pair[pair.index(after: equals)...]
        }
        guard fields["protocol"] == "IPPROTO_TCP",
              let port = fields["sport"].flatMap({ UInt16($0) }),
              let old = fields["oldstate"], let new = fields["newstate"]
        else { return nil }
        switch fields["family"] {
        case "AF_INET": family = 2
        case "AF_INET6": family = 10
        default: return nil
        }
        self.pid = pid
        self.port = port
        oldState = String(old)
        newState = String(new)
    }
}
