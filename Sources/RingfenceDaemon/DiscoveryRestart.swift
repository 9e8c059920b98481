import Logging
import RingfenceFirewall

/// Discovery across a restart (docs/reliability.md, "Crash and restart"): a replaced table
/// carries the discover guards' kernel elements over (`Firewall.apply`), so a discovered XPUB's
/// port stays redirected, to the dead broker's listen port, where connections are refused, until
/// the start-up scan takes it over; these two steps bracket that scan.
extension DiscoveryService {
    /// The ports in each discover guard's kernel sets when the watch starts: after a restart,
    /// those a replaced table carried over, and of them the ones still redirected to the dead
    /// broker's listen port (which the scan probes without holding: `consider`).
    struct CarriedPorts {
        var ports: Set<UInt16>
        var diverted: Set<UInt16>
    }

    /// Reads them, once per discover guard, before the start-up scan.
    func carriedOver() -> [String: CarriedPorts] {
        guard let policy = daemon.policy, policy.firewall.apply else { return [:] }
        var out: [String: CarriedPorts] = [:]
        for rule in rules {
            if let held = try? daemon.firewall.discovered(table: policy.firewall.table, discoverGuard: rule.guardName) {
                out[rule.guardName] = CarriedPorts(ports: held.ports, diverted: Set(held.divert.keys))
            }
        }
        return out
    }

    /// Releases the carried ports that no listener of this daemon's is being probed or brokered
    /// for once the start-up scan has taken its listeners: their listener is gone or no longer a
    /// candidate, and they are redirected to a broker that is no more. (Ports the scan held
    /// meanwhile are all being probed.)
    func releaseUnclaimed() {
        for (guardName, carried) in carried {
            let claimed = coveredPorts().filter { $0.value == guardName }.keys
            let stale = carried.ports.subtracting(claimed).sorted()
            guard !stale.isEmpty else { continue }
            logger.info(
                "discovery released ports whose listener is gone",
                metadata: [
                    "guard": "\(guardName)", "ports": "\(stale.map(String.init).joined(separator: ","))",
                    "why": "carried over in the kernel from before a restart; no candidate listener on that port now",
                ])
            kernel(guardName, stale.map { .release($0, listen: nil) })
        }
    }
}
