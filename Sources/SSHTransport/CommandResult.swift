import Foundation

/// What a remote command produced.
public struct CommandResult: Sendable {
    public var stdout: Data
    public var stderr: Data
    /// The exit status; nil when the command was ended by a signal.
    public var exitStatus: Int32?
    /// The signal name without "SIG" (e.g. "KILL") when the command was ended by one.
    public var exitSignal: String?

    public init(stdout: Data, stderr: Data, exitStatus: Int32?, exitSignal: String?) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
    }

    public var succeeded: Bool { exitStatus == 0 }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// "exit 3" or "signal KILL", for messages.
    public var statusDescription: String {
        if let exitSignal { return "signal \(exitSignal)" }
        return "exit \(exitStatus ?? -1)"
    }
}
