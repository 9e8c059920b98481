import ArgumentParser
import RingfenceAddresses
import RingfenceControl
import RingfencePolicy
import RingfenceStatus

/// `proxyctl kick PEER`: closes every live connection of PEER (an address or a block) in every
/// guard, or in one; with `--ban`, the kernel refuses PEER for that long whatever the
/// allowlists say.
struct Kick: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Close every live connection of a peer (address or block); --ban refuses it for a while.")

    @Argument(help: "An address or a block (10.0.0.9, 10.0.0.0/24, fd00::/64).")
    var peer: String

    @Option(name: .customLong("guard"), help: "Only this guard's connections.")
    var guardName: String?

    @Option(name: .long, help: "Also ban the peer in the kernel for this long: 30s, 10m, 2h, 1d (at most \(BanDuration.maxDays)d).")
    var ban: String?

    @OptionGroup var control: ControlOptions

    func validate() throws {
        try PeerArgument.check(peer)
        if let ban, case .failure(let error) = BanDuration.parse(ban) { throw ValidationError("--ban \(error.description)") }
    }

    func run() throws {
        let reply = try control.send(ControlRequest(command: .kick, peer: peer, guardName: guardName, ban: ban), policy: nil)
        if control.json { return control.printJSON(reply) }
        guard let kick = reply.kick else { return }
        var lines = kick.cut.map { "closed \($0.guardName) #\($0.id) \(Table.address($0.peer, $0.port))" }
        if let sockets = kick.socketsClosed { lines.append("closed \(sockets) TCP socket(s) of this host with \(kick.peer) in the kernel") }
        lines.append(
            "kicked \(kick.peer)\(kick.guardName.map { " from guard \($0)" } ?? ""): \(kick.cut.count + (kick.socketsClosed ?? 0)) connection(s)"
                + (kick.ban.map { ", banned for \(Int($0.expiresInSeconds))s" } ?? ""))
        print(lines.joined(separator: "\n"))
    }
}

/// Checks a peer argument before anything is sent: an address or a block.
enum PeerArgument {
    static func check(_ text: String) throws {
        do throws(AddressParseError) {
            _ = try CIDR(parsing: text)
        } catch {
            throw ValidationError("'\(text)' is not an address or block: \(error.description)")
        }
    }
}
