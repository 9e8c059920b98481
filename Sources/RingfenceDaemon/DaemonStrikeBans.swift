import Dispatch
import Logging
import RingfenceAddresses
import RingfenceAdmission
import RingfenceFirewall
import RingfencePolicy
import RingfenceStatus

/// Strike bans (`ban_after`, docs/nftables.md "Strike bans"): a guard's admission reports a
/// peer that struck too often, and the daemon bans it from new connections to that guard's
/// ports in the kernel, logs it and counts it. On the daemon's queue.
extension Daemon {
    /// Bans `ban.peer` in the kernel set of the guard that reported it (`reportedBy`: a policy
    /// guard, or a discovered broker, whose bans are its discover guard's).
    func banStruck(_ ban: StrikeLedger.Ban, reportedBy name: String) {
        dispatchPrecondition(condition: .onQueue(queue))
        let guardName = Self.policyGuard(of: name)
        var why: String?
        if let policy, !policy.firewall.apply {
            why = "the fence is not applied ([firewall] apply = false)"
        } else if policy?.guards.first(where: { $0.name == guardName }).map(NameScheme.hasStrikeBans) != true {
            why = "its guard has no kernel ban set (not a relay or broker guard of the policy)"
        }
        guard let policy, why == nil else {
            logger.info(
                "peer not banned",
                metadata: [
                    "guard": "\(name)", "peer": "\(ban.peer)", "reason": "\(ban.reason.rawValue)", "why": "\(why ?? "no policy")",
                ])
            return
        }
        do {
            try firewall.strikeBan(ban.peer, guardName: guardName, for: ban.duration, table: policy.firewall.table)
        } catch {
            logger.error(
                "cannot ban peer in the kernel", metadata: ["guard": "\(guardName)", "peer": "\(ban.peer)", "error": "\(error)"])
            return
        }
        logger.warning(
            "peer banned by guard",
            metadata: [
                "guard": "\(guardName)", "peer": "\(ban.peer)", "reason": "\(ban.reason.rawValue)", "strikes": "\(ban.strikes)",
                "for": "\(ban.duration.components.seconds)s",
            ])
    }

    /// The policy guard a running guard belongs to: itself, or for a discovered broker
    /// (`GUARD/ADDRESS:PORT`, `CandidateFilter.brokerName`) its discover guard.
    static func policyGuard(of name: String) -> String {
        String(name.prefix { $0 != "/" })
    }

    /// Lifts every strike ban of `peer` (a single address) and forgets its strikes in every
    /// running guard, so that it is counted afresh; returns the guards whose ban was lifted.
    func liftStrikeBans(_ peer: IPAddress, policy: Policy) throws(FirewallError) -> [String] {
        let lifted = try firewall.liftStrikeBans(peer, policy)
        for running in roster.guards.values { running.admission?.forgetStrikes(of: peer) }
        return lifted
    }
}
