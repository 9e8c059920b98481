import Testing

@testable import RingfencePolicy

/// `discover = true` on a `zmq-xpub` guard: no port, an optional `process` filter, and the keys
/// that cannot go with it.
@Suite struct DiscoverGuardPolicyTests {
    static func guardText(_ keys: String) -> String {
        "[[guard]]\nname = \"xpubs\"\nkind = \"zmq-xpub\"\nallow = [\"10.0.0.0/8\"]\n" + keys
    }

    @Test func discoverGuardParses() throws {
        let policy = try Policy.parse(
            Self.guardText("discover = true\nprocess = \"vllm\"\nmax_subscribers = 4\n"), file: "p.toml")
        let item = policy.guards[0]
        #expect(item.discovers)
        #expect(item.ports == [])
        #expect(item.listenPort == nil)
        #expect(!item.isKernelOnly)
        #expect(item.kind == .zmqXPUB)
        guard case .broker(let broker) = item.settings else {
            Issue.record("not a broker")
            return
        }
        #expect(broker.discover && broker.process == "vllm" && broker.maxSubscribers == 4 && broker.upstream == nil)
    }

    @Test func processIsOptional() throws {
        let policy = try Policy.parse(Self.guardText("discover = true\n"), file: "p.toml")
        guard case .broker(let broker) = policy.guards[0].settings else {
            Issue.record("not a broker")
            return
        }
        #expect(broker.discover && broker.process == nil)
    }

    @Test func discoverFalseIsANamedGuard() throws {
        let policy = try Policy.parse(Self.guardText("discover = false\nport = 5557\n"), file: "p.toml")
        #expect(!policy.guards[0].discovers && policy.guards[0].ports == [5557] && policy.guards[0].listenPort == 15557)
    }

    @Test func severalDiscoverGuards() throws {
        let text = Self.guardText("discover = true\nprocess = \"vllm\"\n")
            + "[[guard]]\nname = \"rest\"\nkind = \"zmq-xpub\"\nallow = []\ndiscover = true\n"
        let policy = try Policy.parse(text, file: "p.toml")
        #expect(policy.guards.map(\.discovers) == [true, true])
    }

    @Test(arguments: [
        ("discover = true\nport = 5557\n",
         "p.toml:6:1: guard[0].port: give either 'port' or 'discover = true', not both (a discover guard brokers every XPUB it finds)"),
        ("discover = true\nlisten_port = 6000\n",
         "p.toml:6:1: guard[0].listen_port: a discover guard takes no 'listen_port': each discovered XPUB's broker listens on an ephemeral port; remove it"),
        ("discover = true\nupstream = \"10.0.0.1:5557\"\n",
         "p.toml:6:1: guard[0].upstream: a discover guard takes no 'upstream': each discovered XPUB's broker connects to the listener's own address; remove it"),
        ("port = 5557\nprocess = \"vllm\"\n",
         "p.toml:6:1: guard[0].process: 'process' only applies with discover = true; add it, or remove 'process'"),
        ("discover = true\nprocess = \"\"\n",
         "p.toml:6:1: guard[0].process: 'process' is empty; give text of the command line, or remove it"),
        ("discover = true\nprocess = 3\n", "p.toml:6:1: guard[0].process: expected a string, found an integer"),
        ("discover = \"yes\"\nport = 5557\n", "p.toml:5:1: guard[0].discover: expected true or false, found a string"),
        ("discover = true\nprocesss = \"vllm\"\n",
         "p.toml:6:1: guard[0].processs: unknown key 'processs' in a guard of kind \"zmq-xpub\""),
        ("allow_x = 1\n", "p.toml:1:1: guard[0]: missing required key 'port'"),
    ])
    func errors(keys: String, message: String) {
        #expect(PolicyErrorTests.problems(Self.guardText(keys)).contains(message))
    }

    @Test func discoverBelongsToXPUBGuards() {
        let text = "[[guard]]\nname = \"g\"\nkind = \"tcp\"\nport = 29500\nallow = []\ndiscover = true\n"
        #expect(
            PolicyErrorTests.problems(text)
                == ["p.toml:6:1: guard[0].discover: 'discover' is not a key of a guard of kind \"tcp\"; it belongs to guards of kind \"zmq-xpub\""])
    }

    @Test func updatedInPlaceWhenProcessIsUnchanged() throws {
        let old = try Policy.parse(Self.guardText("discover = true\nprocess = \"vllm\"\n"), file: "p.toml").guards[0]
        let limits = try Policy.parse(
            Self.guardText("discover = true\nprocess = \"vllm\"\nmax_subscribers = 2\n"), file: "p.toml").guards[0]
        let other = try Policy.parse(Self.guardText("discover = true\nprocess = \"python\"\n"), file: "p.toml").guards[0]
        let named = try Policy.parse(Self.guardText("port = 5557\n"), file: "p.toml").guards[0]
        #expect(limits.canBeUpdatedInPlace(from: old))
        #expect(!other.canBeUpdatedInPlace(from: old))
        #expect(!named.canBeUpdatedInPlace(from: old) && !old.canBeUpdatedInPlace(from: named))
    }
}
