import Foundation

public enum StepStatus: String, Sendable, Codable {
    case pending, running, changed, ok, failed, skipped

    /// The step reached its goal: the host was changed to match, or already matched.
    public var isCompleted: Bool { self == .changed || self == .ok }
}

/// What one step did on one host during one run.
public struct StepRecord: Sendable, Equatable {
    public var runId: Int64
    public var host: String
    public var step: String
    public var status: StepStatus
    /// Hash of the step's inputs, computed by the engine: a completed step is only trusted for the same inputs.
    public var fingerprint: String
    public var startedAt: Date?
    public var durationMs: Int
    public var message: String
    /// Redacted and cut to the last 4 KiB by the journal before storing.
    public var outputTail: String

    public init(runId: Int64, host: String, step: String, status: StepStatus, fingerprint: String,
                startedAt: Date? = nil, durationMs: Int = 0, message: String = "", outputTail: String = "") {
        self.runId = runId
        self.host = host
        self.step = step
        self.status = status
        self.fingerprint = fingerprint
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.message = message
        self.outputTail = outputTail
    }
}
