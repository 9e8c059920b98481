import ArgumentParser
import RingfenceAddresses
import RingfenceControl
import RingfenceFirewall
import RingfencePolicy
import RingfenceStatus

/// `proxyctl explain ADDRESS PORT`: which guard and which rule decide a connection from
/// ADDRESS to PORT on this host, and why, from the running daemon (with its bans) or, with
/// `--policy`, from a file without one.
struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Say which guard and rule decide a connection from ADDRESS to PORT on this host, and why.")

    @Argument(help: "The source address (IPv4 or IPv6).")
    var address: String

    @Argument(help: "The port on this host.")
    var port: UInt16

    @Flag(name: .long, help: "A UDP datagram rather than a TCP connection.")
    var udp = false

    @Option(name: .long, help: "Answer from this policy file, without a daemon (no bans are known).")
    var policy: String?

    @OptionGroup var control: ControlOptions

    func validate() throws {
        guard IPAddress(address) != nil else { throw ValidationError("'\(address)' is not an IP address") }
        guard port > 0 else { throw ValidationError("the port must be 1-65535") }
    }

    func run() throws {
        let transport: FenceVerdict.Transport = udp ? .udp : .tcp
        let explanation: Explanation
        if let policy {
            let loaded = try PolicyArgument.load(policy)
            let verdict = FenceVerdict.decide(IPAddress(address)!, port: port, transport: transport, policy: loaded)
            explanation = Explanation(
                address: "\(IPAddress(address)!)", port: port, protocol: transport.rawValue, verdict: verdict.outcome.rawValue,
                guardName: verdict.guardName, mode: verdict.mode?.rawValue, reason: verdict.reason)
            if control.json { return control.printJSON(ControlReply(ok: true, explain: explanation)) }
        } else {
            let reply = try control.send(
                ControlRequest(command: .explain, address: address, port: port, transport: transport.rawValue), policy: nil)
            if control.json { return control.printJSON(reply) }
            guard let answer = reply.explain else { return }
            explanation = answer
        }
        print("\(explanation.protocol) from \(explanation.address) to port \(explanation.port): \(explanation.reason)")
    }
}
