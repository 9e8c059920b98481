import RingfenceGuard
import RingfenceStatus

/// The running guards a reload starts, stops and updates in place, as typed settings: a
/// `ReloadPlan`'s relay and broker part, mapped (`GuardSettingsMapping`).
struct GuardChanges {
    /// Guards to start: added and restarted ones.
    var started: [any GuardConfiguration] = []
    /// Running guards to stop, each with the reason its connections are cut.
    var stopped: [(name: String, reason: CutReason)] = []
    /// Running guards that take new settings in place.
    var updated: [any GuardConfiguration] = []

    init(started: [any GuardConfiguration] = [], stopped: [(name: String, reason: CutReason)] = [], updated: [any GuardConfiguration] = []) {
        self.started = started
        self.stopped = stopped
        self.updated = updated
    }

    init(_ plan: ReloadPlan) {
        started = (plan.added + plan.restarted).compactMap(GuardSettingsMapping.settings(for:))
        stopped = plan.stopped
        updated = plan.updated.compactMap(GuardSettingsMapping.settings(for:))
    }
}
