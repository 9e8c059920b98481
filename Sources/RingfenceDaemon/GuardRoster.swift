import RingfenceGuard
import RingfenceStatus

/// The daemon's running relay and broker guards, held through the `Guard` protocol, and the
/// reload orchestration over them: start the new guards, apply the fence, then stop the
/// replaced and removed guards and update the rest in place — or, if a guard cannot start or
/// the fence refuses, stop what was just started and leave everything as it was. The dry run
/// lists the connections a reload would cut, by the same rules. Also starts and retires single
/// guards while the daemon runs (discovery), with no policy involved.
///
/// Not thread-safe: the daemon confines it to its queue. The fence and the guards come through
/// protocols (`FenceApplier`, `GuardFactory`), so this is tested without root.
final class GuardRoster {
    /// The running guards, by name.
    private(set) var guards: [String: any Guard] = [:]
    /// The final counters of guards stopped or replaced, by name, so that a guard's counters
    /// carry on across reloads.
    private(set) var retired: [String: GuardCounters] = [:]
    private let factory: any GuardFactory

    init(factory: any GuardFactory) {
        self.factory = factory
    }

    /// Carries out `changes` around `fence`. Returns the connections closed.
    /// - Throws: `DaemonError.guardFailed` when a guard cannot start, or the fence's error; then
    ///   the guards just started are stopped and the running ones are untouched.
    func carryOut(_ changes: GuardChanges, fence: any FenceApplier) throws(DaemonError) -> [ReloadReport.Cut] {
        let stopping = Set(changes.stopped.map(\.name))
        var started: [String: any Guard] = [:]
        do throws(DaemonError) {
            for settings in changes.started {
                let name = settings.frontEnd.name
                if guards[name] != nil && !stopping.contains(name) {
                    throw .guardFailed("guard '\(name)': a guard of that name is already running")
                }
                started[name] = try start(settings)
            }
            try fence.apply()
        } catch {
            for running in started.values { running.stop() }
            throw error
        }
        var cut: [ReloadReport.Cut] = []
        for (name, reason) in changes.stopped { cut += retire(named: name, reason: reason) ?? [] }
        // Allowlists and limits change in place, after the fence: nothing else is disturbed.
        for settings in changes.updated { cut += guards[settings.frontEnd.name]?.update(to: settings) ?? [] }
        guards.merge(started) { $1 }
        return cut
    }

    /// The connections `carryOut(changes)` would close, changing nothing (a dry run).
    func wouldCut(_ changes: GuardChanges) -> [ReloadReport.Cut] {
        var cut: [ReloadReport.Cut] = []
        for (name, reason) in changes.stopped {
            guard let running = guards[name] else { continue }
            cut += running.snapshot().connections.map { ReloadReport.Cut($0, reason: reason) }
        }
        for settings in changes.updated {
            cut += guards[settings.frontEnd.name]?.wouldCut(updatingTo: settings) ?? []
        }
        return cut
    }

    /// Starts one guard and adds it to the running ones (discovery; no fence change).
    /// - Throws: `DaemonError.guardFailed` when the name is taken or the guard cannot start.
    func add(_ settings: any GuardConfiguration) throws(DaemonError) {
        let name = settings.frontEnd.name
        guard guards[name] == nil else {
            throw .guardFailed("guard '\(name)': a guard of that name is already running")
        }
        guards[name] = try start(settings)
    }

    /// Stops the guard `name`, keeps its counters, and returns the connections it held; nil
    /// when no such guard runs.
    @discardableResult
    func retire(named name: String, reason: CutReason) -> [ReloadReport.Cut]? {
        guard let old = guards.removeValue(forKey: name) else { return nil }
        let cut = old.snapshot().connections.map { ReloadReport.Cut($0, reason: reason) }
        old.stop()
        retired[name] = (retired[name] ?? GuardCounters()) + old.snapshot().status.counters
        return cut
    }

    /// Stops every guard (shutdown).
    func stopAll() {
        for running in guards.values { running.stop() }
    }

    private func start(_ settings: any GuardConfiguration) throws(DaemonError) -> any Guard {
        do throws(GuardError) {
            let made = try factory.makeGuard(settings)
            try made.start()
            return made
        } catch {
            throw .guardFailed(error.description)
        }
    }
}
