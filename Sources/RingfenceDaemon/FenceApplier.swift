/// Applies a reload's kernel fence, between starting the new guards and touching the running
/// ones. The daemon's applies the policy through `Firewall`; the orchestration's tests fake it.
protocol FenceApplier {
    /// - Throws: `DaemonError.firewall` when nftables refuses; nothing changed in the kernel.
    func apply() throws(DaemonError)
}

/// A fence given as a closure (the daemon's: `Daemon.applyFence` of the next policy).
struct FenceClosure: FenceApplier {
    let body: () throws(DaemonError) -> Void

    func apply() throws(DaemonError) {
        try body()
    }
}
