import Dispatch
import Logging

/// `[daemon] watch`: the daemon follows its policy file (`PolicyWatch`), reloading through
/// `reload()` as SIGHUP does.
extension Daemon {
    /// Starts, stops or re-aims the policy watch to match the policy in force: on while its
    /// `[daemon] watch` is true, on the file the daemon reloads from (`proxyctl reload --policy`
    /// moves it). Called after the start and after every applied reload. On the daemon's queue.
    func followPolicyFile() {
        dispatchPrecondition(condition: .onQueue(queue))
        let wanted = policy?.daemon.watch == true
        if wanted, policyWatch?.path == policyPath { return }
        if let running = policyWatch {
            running.stop()
            policyWatch = nil
            logger.info("policy watch stopped", metadata: ["path": "\(running.path)"])
        }
        guard wanted else { return }
        do {
            policyWatch = try PolicyWatch(path: policyPath, queue: queue, logger: logger) { [weak self] in
                _ = self?.reload()
            }
            logger.info("watching the policy file", metadata: ["path": "\(policyPath)"])
        } catch {
            logger.error(
                "cannot watch the policy file; reload it with SIGHUP or proxyctl reload",
                metadata: ["path": "\(policyPath)", "error": "\(error)"])
        }
    }
}
