import ArgumentParser

/// `proxyctl`: checks policies and prints their nftables rules (no daemon needed).
@main
struct Proxyctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxyctl",
        abstract: "Check Ringfence policies and print their nftables rules.",
        subcommands: [Check.self, Nft.self]
    )
}
