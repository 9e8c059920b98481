import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl bans`: the peers the kernel refuses, with the time their bans have left: on every
/// port (`kick --ban`, guard `*`) or new connections to one guard's ports (its strikes, `ban_after`).
struct Bans: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the bans in force: host-wide (guard *) and by a guard's strikes, with the time each has left.")

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .bans), policy: nil)
        if control.json { return control.printJSON(reply) }
        let bans = reply.bans ?? []
        guard !bans.isEmpty else { return print("no bans") }
        var table = Table("PEER", "GUARD", "LEFT")
        for ban in bans { table.add(ban.peer, ban.guardName ?? "*", Table.duration(seconds: ban.expiresInSeconds)) }
        print(table.text)
    }
}

/// `proxyctl unban PEER`: lifts the ban of PEER at once: its host-wide ban and, for a single
/// address, its strike bans in every guard.
struct Unban: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lift the ban of a peer (as `proxyctl bans` lists it).")

    @Argument(help: "The banned address or block.")
    var peer: String

    @OptionGroup var control: ControlOptions

    func validate() throws { try PeerArgument.check(peer) }

    func run() throws {
        let reply = try control.send(ControlRequest(command: .unban, peer: peer), policy: nil)
        if control.json { return control.printJSON(reply) }
        print("ban of \(reply.unban?.peer ?? peer) lifted")
    }
}
