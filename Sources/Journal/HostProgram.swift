/// A versioned program as the facts script last found it on a host: its `stat` identity and the version it printed.
public struct HostProgram: Sendable, Equatable {
    public let host: String
    public let program: String
    public let identity: String
    public let version: String

    public init(host: String, program: String, identity: String, version: String) {
        self.host = host
        self.program = program
        self.identity = identity
        self.version = version
    }
}
