import Facts
import Inventory
import Steps

/// One host's steps in catalog order, each judged applicable when its turn comes, with the facts read last: an
/// earlier step's change (Docker installed by `docker`) can make a later step (`k3s-docker-forward`) apply in the
/// same run. Pure, so the walk's choice can be tested without a host.
struct StepQueue {
    let steps: [any Step]
    let host: InventoryHost
    private var position = 0
    /// The steps passed over because they did not apply, in order.
    private(set) var notApplicable: [String] = []

    init(steps: [any Step], host: InventoryHost) {
        self.steps = steps
        self.host = host
    }

    /// The next step that applies given `facts`, and the ones passed over on the way (they do not apply).
    mutating func next(facts: HostFacts) -> (step: (any Step)?, passed: [String]) {
        var passed: [String] = []
        while position < steps.count {
            let step = steps[position]
            position += 1
            if step.concerns(host) && step.applies(to: host, facts: facts) { return (step, passed) }
            passed.append(step.id)
            notApplicable.append(step.id)
        }
        return (nil, passed)
    }

    /// The step `next` returned last and every step after it: what a read of the host still has to answer for
    /// (the steps before it are finished and are not judged again).
    var ahead: [any Step] { Array(steps[max(0, position - 1)...]) }

    /// After the walk: for each step it did not pass over, whether the step concerns the host, judged with the last
    /// facts read (unknown facts: it does, so nobody takes a step that never ran for done).
    func applicability(lastFacts: HostFacts?) -> [(id: String, applies: Bool)] {
        steps.filter { !notApplicable.contains($0.id) }.map { step in
            (step.id, step.concerns(host) && (lastFacts.map { step.applies(to: host, facts: $0) } ?? true))
        }
    }
}
