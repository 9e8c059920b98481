import Testing

@testable import RingfencePolicy

/// Each kind of policy error, with its exact message and position.
@Suite struct PolicyErrorTests {
    static func problems(_ text: String) -> [String] {
        do {
            _ = try Policy.parse(text, file: "p.toml")
            return []
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    /// A valid guard to append to cases about other sections: a policy must have one.
    static let aGuard = "\n[[guard]]\nname = \"z\"\nkind = \"firewall\"\nport = 9\nallow = []\n"

    static let guardHeader = """
        [[guard]]
        name = "g"
        kind = "firewall"
        port = 29500

        """

    @Test(arguments: [
        // Syntax errors carry TOMLKit's position.
        ("x = [\n", "p.toml:1:7: toml: Error while parsing array: encountered end-of-file"),
        ("[firewall]\ntable = \"ringfence\"\ntable = \"x\"\n", "p.toml:3:9: toml: Error while parsing key-value pair: cannot redefine existing string 'table'"),
        // Unknown keys, everywhere.
        ("[firewall]\naply = true\n" + aGuard, "p.toml:2:1: firewall.aply: unknown key 'aply' in [firewall]; did you mean 'apply'?"),
        ("[daemon]\nsocket = \"/x\"\n" + aGuard, "p.toml:2:1: daemon.socket: unknown key 'socket' in [daemon]"),
        ("[firewal]\n" + aGuard, "p.toml:1:1: firewal: unknown key 'firewal' in the policy (its sections are [firewall], [daemon], [peers] and [[guard]]); did you mean 'firewall'?"),
        (guardHeader + "allow = []\nhwm_bytes = \"1MiB\"\n", "p.toml:6:1: guard[0].hwm_bytes: 'hwm_bytes' is not a key of a guard of kind \"firewall\"; it belongs to guards of kind \"zmq-xpub\""),
        (guardHeader + "allow = []\nalow = []\n", "p.toml:6:1: guard[0].alow: unknown key 'alow' in a guard of kind \"firewall\"; did you mean 'allow'?"),
        // Wrong types.
        ("[firewall]\napply = \"yes\"\n" + aGuard, "p.toml:2:1: firewall.apply: expected true or false, found a string"),
        ("[firewall]\ndeny = \"rejct\"\n" + aGuard, "p.toml:2:1: firewall.deny: 'rejct' is not one of \"reject\", \"drop\""),
        ("[firewall]\ntable = \"my table\"\n" + aGuard, "p.toml:2:1: firewall.table: 'my table' is not a valid table name (a letter, then letters, digits or _; at most 32)"),
        ("firewall = 3\n" + aGuard, "p.toml:1:1: firewall: expected a table [firewall], found an integer"),
        ("[guard]\nname = \"x\"\n", "p.toml:1:1: guard: expected an array of tables; write each guard as [[guard]], not [guard]"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = \"29500\"\nallow = []\n", "p.toml:4:1: guard[0].port: expected an integer, found a string"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = \"10.0.0.1\"\n", "p.toml:5:1: guard[0].allow: expected an array of strings, found a string"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\nallow = [\"10.0.0.1\", 7]\n", "p.toml:5:22: guard[0].allow[1]: expected a string, found an integer"),
        // Bad addresses, at the element.
        ("[peers]\nw = [\"10.0.0.0/33\"]\n" + aGuard, "p.toml:2:6: peers.w[0]: prefix length 33 is out of range for IPv4 (0-32)"),
        ("[peers]\nw = [\"10.0.0.1\",\n     \"300.1.1.1\"]\n" + aGuard, "p.toml:3:6: peers.w[1]: '300.1.1.1' is not a valid IPv4 or IPv6 address"),
        ("[peers]\nw = [ \"::/129\" ]\n" + aGuard, "p.toml:2:7: peers.w[0]: prefix length 129 is out of range for IPv6 (0-128)"),
        ("[peers]\nw = [\"10.0.0.5/24\"]\n" + aGuard, "p.toml:2:6: peers.w[0]: '10.0.0.5/24' has host bits set; write '10.0.0.0/24' for the network or '10.0.0.5/32' for the host"),
        (guardHeader + "allow = [\"fe80::1%eth0\"]\n", "p.toml:5:10: guard[0].allow[0]: 'fe80::1%eth0' has a zone index; zones are not allowed in a policy"),
        // Groups.
        (guardHeader + "allow = [\"@workers\"]\n", "p.toml:5:10: guard[0].allow[0]: undefined peer group '@workers' (none are defined in [peers])"),
        ("[peers]\nw = [\"@nobody\"]\n" + aGuard, "p.toml:2:6: peers.w[0]: undefined peer group '@nobody' (defined: w)"),
        ("[peers]\na = [\"@a\"]\n" + aGuard, "p.toml:2:6: peers.a[0]: peer group reference cycle: @a -> @a"),
        ("[peers]\n\"bad name\" = []\n" + aGuard, "p.toml:2:1: peers.bad name: 'bad name' is not a valid group name (a letter, then letters, digits, _ or -)"),
        // Ports.
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 70000\nallow = []\n", "p.toml:4:1: guard[0].port: 70000 is out of range (1-65535)"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 0\nallow = []\n", "p.toml:4:1: guard[0].port: 0 is out of range (1-65535)"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nports = [1, 65536]\nallow = []\n", "p.toml:4:13: guard[0].ports[1]: port 65536 is out of range (1-65535)"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nports = [5, 5]\nallow = []\n", "p.toml:4:13: guard[0].ports[1]: port 5 is listed twice"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nports = []\nallow = []\n", "p.toml:4:1: guard[0].ports: expected a non-empty array of port numbers"),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 60000\nallow = []\n", "p.toml:4:1: guard[0].port: the default listen_port (port + 10000) does not exist for port 60000; set listen_port"),
        // Required keys and kinds.
        ("[[guard]]\nkind = \"firewall\"\nport = 1\nallow = []\n", "p.toml:1:1: guard[0]: missing required key 'name'"),
        ("[[guard]]\nname = \"g\"\nkind = \"firewall\"\nport = 1\n", "p.toml:1:1: guard[0]: missing required key 'allow' (the peers allowed in; [] admits nobody)"),
        ("[[guard]]\nname = \"g\"\nkind = \"udp\"\nport = 1\nallow = []\n", "p.toml:3:1: guard[0].kind: 'udp' is not one of \"firewall\", \"tcp\", \"zmq-xpub\", \"host\""),
        ("[[guard]]\nname = \"-g\"\nkind = \"firewall\"\nport = 1\nallow = []\n", "p.toml:2:1: guard[0].name: '-g' is not a valid guard name (a letter, then letters, digits, _ or -; at most 32)"),
        // Limits.
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nhwm_bytes = \"10MB\"\n", "p.toml:6:1: guard[0].hwm_bytes: '10MB': use KiB, MiB or GiB (sizes are powers of 1024)"),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nhandshake_timeout = 5\n", "p.toml:6:1: guard[0].handshake_timeout: expected a duration such as \"5s\", found an integer"),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nhandshake_timeout = \"5\"\n", "p.toml:6:1: guard[0].handshake_timeout: '5' has no unit; write it with us, ms, s or m, e.g. \"5s\""),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nmax_topic_bytes = 250\n", "p.toml:6:1: guard[0].max_topic_bytes: 250 is out of range (0-245)"),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\non_overflow = \"pause\"\n", "p.toml:6:1: guard[0].on_overflow: 'pause' is not one of \"block\", \"disconnect\", \"drop\""),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nmax_stall = \"2m\"\n", "p.toml:6:1: guard[0].max_stall: 2m is more than 1m; a reader that takes nothing for that long is gone, not slow"),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nmax_stall = \"0s\"\n", "p.toml:6:1: guard[0].max_stall: must be more than zero"),
        ("[[guard]]\nname = \"g\"\nkind = \"zmq-xpub\"\nport = 5557\nallow = []\nhwm_bytes = \"1MiB\"\n", "p.toml:6:1: guard[0].hwm_bytes: max_message_bytes (64MiB) is larger than hwm_bytes (1MiB): such a message could never be queued"),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\nmax_keys = 1\n", "p.toml:6:1: guard[0].max_keys: 'max_keys' only applies with protocol = \"tcpstore\""),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\nprotocol = \"tcpstore\"\nmax_key_bytes = \"16KiB\"\n", "p.toml:7:1: guard[0].max_key_bytes: 16KiB is above TCPStore's own limit of 8KiB"),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\nbusy_poll = \"20ms\"\n", "p.toml:6:1: guard[0].busy_poll: 20ms is more than 10ms; polling longer only costs CPU"),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\nconnect_timeout = \"0s\"\n", "p.toml:6:1: guard[0].connect_timeout: must be more than zero"),
        ("[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\nupstream = \"localhost\"\n", "p.toml:6:1: guard[0].upstream: 'localhost' is not host:port (write IPv6 as [addr]:port)"),
        ("[daemon]\ncontrol_socket = \"run/x.sock\"\n" + aGuard, "p.toml:2:1: daemon.control_socket: 'run/x.sock' must be an absolute path shorter than 108 bytes"),
        ("[daemon]\nwatch = \"yes\"\n" + aGuard, "p.toml:2:1: daemon.watch: expected true or false, found a string"),
    ])
    func reportsWithPosition(text: String, expected: String) {
        #expect(Self.problems(text) == [expected])
    }

    @Test func portsIsOnlyForFirewallGuards() {
        let text = "[[guard]]\nname = \"g\"\nkind = \"tcp\"\nports = [5]\nallow = []\n"
        #expect(
            Self.problems(text) == [
                "p.toml:1:1: guard[0]: missing required key 'port'",
                "p.toml:4:1: guard[0].ports: 'ports' is not a key of a guard of kind \"tcp\"; it belongs to guards of kind \"firewall\"",
            ])
    }

    /// An empty or truncated file must not pass for a policy that fences nothing.
    @Test(arguments: ["", "# nothing\n", "[firewall]\ntable = \"t\"\n"])
    func aPolicyWithoutGuardsIsRefused(text: String) {
        #expect(Self.problems(text) == ["p.toml: guard: the policy has no [[guard]]; a policy must fence at least one port"])
    }

    @Test func duplicateGuardNames() {
        let text = """
            [[guard]]
            name = "g"
            kind = "firewall"
            port = 1
            allow = []

            [[guard]]
            name = "g"
            kind = "firewall"
            port = 2
            allow = []
            """
        #expect(Self.problems(text) == ["p.toml:8:1: guard[1].name: duplicate guard name 'g' (first used by guard[0])"])
    }

    @Test func twoGuardsOnOnePort() {
        let text = """
            [[guard]]
            name = "a"
            kind = "firewall"
            ports = [29500, 29501]
            allow = []

            [[guard]]
            name = "b"
            kind = "tcp"
            port = 29501
            allow = []

            [[guard]]
            name = "c"
            kind = "zmq-xpub"
            port = 5557
            listen_port = 39501
            allow = []
            """
        #expect(
            Self.problems(text) == [
                "p.toml:10:1: guard[1].port: port 29501 is already used as the guarded port of guard 'a'",
                "p.toml:17:1: guard[2].listen_port: port 39501 is already used as the listen port of guard 'b'",
            ])
    }

    @Test func cycleThroughTwoGroups() {
        let text = """
            [peers]
            a = ["@b"]
            b = ["10.0.0.1", "@a"]
            """ + Self.aGuard
        #expect(Self.problems(text) == ["p.toml:3:18: peers.b[1]: peer group reference cycle: @a -> @b -> @a"])
    }

    /// Every problem of a file is reported at once, in document order.
    @Test func reportsEveryProblemAtOnce() {
        let text = """
            [firewall]
            deny = "nope"
            [peers]
            w = ["10.0.0.0/33", "::/129"]
            [[guard]]
            name = "g"
            kind = "firewall"
            port = 99999
            allow = ["@missing"]
            """
        let found = Self.problems(text)
        #expect(found.count == 5)
        #expect(found.map { $0.split(separator: ":")[1] } == ["2", "4", "4", "8", "9"])
    }

    @Test func missingFileIsReported() {
        #expect(throws: PolicyError.self) { try Policy.load(path: "/nonexistent/policy.toml") }
        do {
            _ = try Policy.load(path: "/nonexistent/policy.toml")
        } catch {
            #expect(error.description == "/nonexistent/policy.toml: file: cannot read: No such file or directory")
        }
    }
}
