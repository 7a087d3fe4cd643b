import Testing
@testable import Engine
import Facts
import Inventory
import Steps

/// A host's walk judges each step with the facts read last, so a step made applicable by an earlier step's change
/// (Docker installed) runs in the same run, and one that never ran is not taken for done.
@Suite struct StepQueueTests {
    /// Applies when the facts find Docker, as k3s-docker-forward does on a host that has none yet.
    struct NeedsDocker: Step {
        let id: String
        let summary = "needs Docker"
        func applies(to host: InventoryHost, facts: HostFacts) -> Bool { facts.versions.docker != nil }
        func probe(for host: InventoryHost) -> String { "true" }
        func decide(_ context: StepContext) throws -> Decision { .ok("") }
    }

    struct Always: Step {
        let id: String
        let summary = "always"
        func applies(to host: InventoryHost, facts: HostFacts) -> Bool { true }
        func probe(for host: InventoryHost) -> String { "true" }
        func decide(_ context: StepContext) throws -> Decision { .ok("") }
    }

    let host = InventoryHost(name: "ci-1", address: "10.0.0.30", roles: [.runner, .agent],
                             ssh: SSHSettings(keyPath: "/root/.ssh/id", useAgent: false, knownHosts: "/root/.ssh/known_hosts"),
                             location: SourceLocation(file: "i.yaml", line: 1, column: 1))
    let steps: [any Step] = [Always(id: "docker"), NeedsDocker(id: "forward"), Always(id: "k3s-service")]

    var withDocker: HostFacts {
        var facts = HostFacts()
        facts.versions.docker = "27.5.1"
        return facts
    }

    @Test func aStepMadeApplicableByAnEarlierChangeIsWalked() {
        var queue = StepQueue(steps: steps, host: host)
        #expect(queue.next(facts: HostFacts()).step?.id == "docker")
        // docker changed the host; the facts read again find Docker.
        let next = queue.next(facts: withDocker)
        #expect(next.step?.id == "forward" && next.passed.isEmpty)
        #expect(queue.next(facts: withDocker).step?.id == "k3s-service")
        #expect(queue.next(facts: withDocker).step == nil)
        #expect(queue.notApplicable.isEmpty)
    }

    @Test func aStepThatStillDoesNotApplyIsPassedOverAndCountsAsDone() {
        var queue = StepQueue(steps: steps, host: host)
        _ = queue.next(facts: HostFacts())
        let next = queue.next(facts: HostFacts())
        #expect(next.step?.id == "k3s-service" && next.passed == ["forward"])
        #expect(queue.applicability(lastFacts: HostFacts()).map { $0.id } == ["docker", "k3s-service"])
    }

    /// The walk stopped after docker (the connection dropped): forward, which did not apply with the first facts,
    /// applies with the last ones, so whoever waits for it must not take it for done.
    @Test func stepsNeverReachedAreJudgedWithTheLastFacts() {
        var queue = StepQueue(steps: steps, host: host)
        _ = queue.next(facts: HostFacts())
        let after = [String: Bool](uniqueKeysWithValues: queue.applicability(lastFacts: withDocker).map { ($0.id, $0.applies) })
        #expect(after == ["docker": true, "forward": true, "k3s-service": true])
        let before = [String: Bool](uniqueKeysWithValues: queue.applicability(lastFacts: HostFacts()).map { ($0.id, $0.applies) })
        #expect(before["forward"] == false)
        // Without facts nothing is known: every step counts as applying (not done).
        #expect(StepQueue(steps: steps, host: host).applicability(lastFacts: nil).allSatisfy { $0.applies })
    }
}
