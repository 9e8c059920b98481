import RingfenceControl
import RingfenceStatus
import Testing

@testable import RingfenceDaemon

/// `proxyctl kick PEER --guard NAME` finds the guards of the policy in force and those
/// `Daemon.startGuard` started at run time (before, only the policy's: a guard started at run
/// time could be kicked only with all the others).
@Suite struct KickTargetTests {
    @Test func aGuardOfThePolicyOrOneStartedAtRunTimeIsFound() throws {
        let policy = ["store", "bus"]
        let runtime = ["discovered"]
        #expect(try Daemon.kickTarget("store", policy: policy, runtime: runtime).get() == "store")
        #expect(try Daemon.kickTarget("discovered", policy: policy, runtime: runtime).get() == "discovered")
    }

    @Test func anUnknownGuardIsNotFoundAndTheReplyListsEveryGuard() {
        let result = Daemon.kickTarget("nope", policy: ["store"], runtime: ["discovered"])
        guard case .failure(let error) = result else {
            Issue.record("an unknown guard was found: \(result)")
            return
        }
        #expect(error.code == .notFound)
        #expect(error.message.contains("store, discovered"))
    }
}
