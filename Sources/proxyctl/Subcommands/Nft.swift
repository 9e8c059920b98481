import ArgumentParser
import RingfenceFirewall
import RingfencePolicy

/// `proxyctl nft POLICY`: the nftables script on stdout, ready for `nft -f -`.
struct Nft: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the policy's nftables script, ready for `nft -f -`.")

    @OptionGroup var file: PolicyArgument

    func run() throws {
        print(RulesetRenderer.render(try file.load()), terminator: "")
    }
}
