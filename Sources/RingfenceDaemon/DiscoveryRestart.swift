import Logging
import RingfenceFirewall

/// Discovery across a restart (docs/reliability.md, "Crash and restart"): a replaced table
/// carries the discover guards' kernel elements over (`Firewall.apply`), so a discovered XPUB's
/// port stays redirected, to the dead broker's listen port, where connections are refused, until
/// the start-up scan takes it over; these two steps bracket that scan.
extension DiscoveryService {
    /// The ports each discover guard's kernel map still redirects when the watch starts: after a
    /// restart, those a replaced table carried over (`Firewall.apply`), redirected to the dead
    /// broker's listen port, where connections are refused.
    func carriedOver() -> [String: Set<UInt16>] {
        guard let policy = daemon.policy, policy.firewall.apply else { return [:] }
        var out: [String: Set<UInt16>] = [:]
        for rule in rules {
            if let held = try? daemon.firewall.discovered(table: policy.firewall.table, discoverGuard: rule.guardName) {
                out[rule.guardName] = Set(held.divert.keys)
            }
        }
        return out
    }

    /// Releases the ports in the discover guards' kernel sets that no listener of this daemon's
    /// is being probed or brokered for: those a replaced table carried over from before a restart
    /// (`Firewall.apply`, docs/reliability.md) whose listener is gone or no longer a candidate,
    /// redirected to a broker that is no more. Run once the start-up scan has taken its listeners.
    func releaseUnclaimed() {
        guard let policy = daemon.policy, policy.firewall.apply else { return }
        for rule in rules {
            guard let held = try? daemon.firewall.discovered(table: policy.firewall.table, discoverGuard: rule.guardName)
            else { continue }
            let claimed = coveredPorts().filter { $0.value == rule.guardName }.keys
            let stale = held.ports.subtracting(claimed).sorted()
            guard !stale.isEmpty else { continue }
            logger.info(
                "discovery released ports whose listener is gone",
                metadata: [
                    "guard": "\(rule.guardName)", "ports": "\(stale.map(String.init).joined(separator: ","))",
                    "why": "carried over in the kernel from before a restart; no candidate listener on that port now",
                ])
            kernel(rule.guardName, stale.map { .release($0, listen: nil) })
        }
    }
}
