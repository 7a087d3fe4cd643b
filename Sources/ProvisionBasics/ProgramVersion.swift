/// A program file on a host and the version it printed: `identity` is its `stat` (device, inode, size, mtime,
/// ctime), which any replacement changes.
public struct ProgramVersion: Sendable, Equatable {
    public let identity: String
    public let value: String

    public init(identity: String, value: String) {
        self.identity = identity
        self.value = value
    }
}
