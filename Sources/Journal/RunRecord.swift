import Foundation

public enum RunStatus: String, Sendable, Codable {
    case running, succeeded, failed, interrupted
}

/// One invocation of a command against an inventory, as the journal remembers it.
public struct RunRecord: Sendable, Equatable {
    public var id: Int64
    public var command: String
    public var inventoryPath: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var status: RunStatus
    public var pid: Int32
    public var machine: String
    public var resumedFrom: Int64?

    public init(id: Int64, command: String, inventoryPath: String, startedAt: Date, finishedAt: Date? = nil,
                status: RunStatus, pid: Int32, machine: String, resumedFrom: Int64? = nil) {
        self.id = id
        self.command = command
        self.inventoryPath = inventoryPath
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.pid = pid
        self.machine = machine
        self.resumedFrom = resumedFrom
    }

    /// A run still marked running whose process no longer exists was killed (e.g. with -9) before it could finish.
    public var wasAbandoned: Bool {
        status == .running && Machine.processIsGone(pid: pid, machine: machine)
    }
}
