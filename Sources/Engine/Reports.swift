import Facts
import Journal
import Steps

/// What happened to one step on one host, as the summary, the JSON output and the journal show it.
public struct StepOutcome: Sendable {
    public var id: String
    public var status: StepStatus
    public var message: String
    public var durationMs: Int
    /// For plan: what apply would do.
    public var actions: [String]
    public var fingerprint: String
    public var outputTail: String

    public init(id: String, status: StepStatus, message: String, durationMs: Int = 0, actions: [String] = [],
                fingerprint: String = "", outputTail: String = "") {
        self.id = id
        self.status = status
        self.message = message
        self.durationMs = durationMs
        self.actions = actions
        self.fingerprint = fingerprint
        self.outputTail = outputTail
    }
}

/// One host's run: its steps, or why it could not be reached at all.
public struct HostReport: Sendable {
    public var name: String
    public var steps: [StepOutcome]
    /// Set when the host failed before its steps could be decided (unreachable, login refused...).
    public var error: String?
    public var durationMs: Int
    /// What the host reported last (nil when it could not be read); `verify` checks them.
    public var facts: HostFacts?

    public init(name: String, steps: [StepOutcome], error: String? = nil, durationMs: Int = 0, facts: HostFacts? = nil) {
        self.name = name
        self.steps = steps
        self.error = error
        self.durationMs = durationMs
        self.facts = facts
    }

    public func count(_ status: StepStatus) -> Int { steps.filter { $0.status == status }.count }
    public var converged: Bool { error == nil && steps.allSatisfy { $0.status == .ok || $0.status == .changed } }
    public var pendingChanges: Bool { steps.contains { $0.status == .pending } }
}
