import RingfenceAddresses
import Testing

@testable import RingfenceListeners

/// trace_pipe lines as this kernel prints them, and lines that must not parse.
@Suite struct TraceLineTests {
    static let tail = "family=AF_INET protocol=IPPROTO_TCP sport=34353 dport=0 saddr=127.0.0.1 daddr=0.0.0.0 "
        + "saddrv6=::ffff:127.0.0.1 daddrv6=:: oldstate=TCP_CLOSE newstate=TCP_LISTEN"

    @Test func aListenRecordParses() {
        let line = "         python3-31437   [001] ..... 2634.728801: inet_sock_set_state: " + Self.tail
        #expect(TraceLine(line[...]) == TraceLine(pid: 31437, family: 2, port: 34353, oldState: "TCP_CLOSE", newState: "TCP_LISTEN"))
        #expect(TraceLine(line[...])?.isListen == true)
    }

    @Test func commandsWithSpacesAndDashesAndTheTgidColumn() {
        let spaced = "<...>-7 [000] d..1. 1.000001: inet_sock_set_state: " + Self.tail
        #expect(TraceLine(spaced[...])?.pid == 7)
        let dashed = "pt_main-thread -x-99 [001] ..... 5.5: inet_sock_set_state: " + Self.tail
        #expect(TraceLine(dashed[...])?.pid == 99)
        let tgid = "python3-100 (     90) [001] ..... 5.5: inet_sock_set_state: " + Self.tail
        #expect(TraceLine(tgid[...])?.pid == 100)
    }

    @Test func aCloseRecordIsAnUnlisten() {
        let line = "python3-5 [001] ..... 9.1: inet_sock_set_state: family=AF_INET6 protocol=IPPROTO_TCP sport=80 "
            + "dport=0 saddr=0.0.0.0 daddr=0.0.0.0 saddrv6=::1 daddrv6=:: oldstate=TCP_LISTEN newstate=TCP_CLOSE"
        let record = TraceLine(line[...])
        #expect(record?.family == 10 && record?.port == 80)
        #expect(record?.isUnlisten == true && record?.isListen == false)
    }

    @Test(arguments: [
        "",
        "garbage",
        ": inet_sock_set_state: " + tail,
        "python3 [001] ..... 1.0: inet_sock_set_state: " + tail,
        "python3-x [001] ..... 1.0: inet_sock_set_state: " + tail,
        "python3-1 [001] ..... 1.0: inet_sock_set_state: family=AF_INET protocol=IPPROTO_SCTP sport=1 oldstate=TCP_CLOSE newstate=TCP_LISTEN",
        "python3-1 [001] ..... 1.0: inet_sock_set_state: family=AF_UNIX protocol=IPPROTO_TCP sport=1 oldstate=TCP_CLOSE newstate=TCP_LISTEN",
        "python3-1 [001] ..... 1.0: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=70000 oldstate=A newstate=B",
        "python3-1 [001] ..... 1.0: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=1 newstate=TCP_LISTEN",
        "python3-1 [001] ..... 1.0: sched_switch: " + tail,
        "CPU:1 [LOST 34 EVENTS]",
    ])
    func malformedLinesDoNotParse(line: String) {
        #expect(TraceLine(line[...]) == nil)
    }
}
