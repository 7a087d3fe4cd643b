import Journal

/// Live progress of a run, rendered by the command layer (one line per host on a terminal, plain lines otherwise).
public protocol ProgressSink: Sendable {
    func hostStarted(_ host: String) async
    func stepStarted(_ host: String, step: String) async
    func stepFinished(_ host: String, outcome: StepOutcome) async
    func hostFinished(_ report: HostReport) async
    func notice(_ host: String, _ message: String) async
}

/// For callers that want no progress.
public struct SilentProgress: ProgressSink {
    public init() {}
    public func hostStarted(_ host: String) async {}
    public func stepStarted(_ host: String, step: String) async {}
    public func stepFinished(_ host: String, outcome: StepOutcome) async {}
    public func hostFinished(_ report: HostReport) async {}
    public func notice(_ host: String, _ message: String) async {}
}
