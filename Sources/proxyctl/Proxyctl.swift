import ArgumentParser

/// `proxyctl`: checks policies and prints their nftables rules (no daemon needed), and drives a
/// running `proxyd` over its control socket (`reload`, `status`, `peers`, and the operators'
/// tools `audit`, `explain`, `kick`, `bans`, `unban`).
@main
struct Proxyctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxyctl",
        abstract: "Check Ringfence policies, print their nftables rules, and drive a running proxyd.",
        subcommands: [
            Check.self, Nft.self, Reload.self, Status.self, Peers.self, Audit.self, Explain.self, Kick.self, Bans.self,
            Listeners.self, Unban.self, Discovered.self,
        ]
    )
}
