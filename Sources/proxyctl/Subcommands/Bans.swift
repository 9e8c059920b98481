import ArgumentParser
import RingfenceControl
import RingfenceStatus

/// `proxyctl bans`: the peers the kernel refuses on every port, with the time their bans have left.
struct Bans: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the bans in force and the time each has left.")

    @OptionGroup var control: ControlOptions

    func run() throws {
        let reply = try control.send(ControlRequest(command: .bans), policy: nil)
        if control.json { return control.printJSON(reply) }
        let bans = reply.bans ?? []
        guard !bans.isEmpty else { return print("no bans") }
        var table = Table("PEER", "LEFT")
        for ban in bans { table.add(ban.peer, Table.duration(seconds: ban.expiresInSeconds)) }
        print(table.text)
    }
}

/// `proxyctl unban PEER`: lifts the ban of PEER at once.
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
