/// A local file's sha256 as it was when hashed, identified by what `stat` says of it then: the journal keeps these,
/// so a big airgap file is hashed once, not at every run, until it is written, replaced or touched.
public struct FileDigest: Sendable, Equatable {
    public let path: String
    /// Device, inode, size, modification and change times (nanoseconds). Any write, rename or chmod changes the
    /// change time, which a user cannot set back.
    public let identity: String
    public let sha256: String

    public init(path: String, identity: String, sha256: String) {
        self.path = path
        self.identity = identity
        self.sha256 = sha256
    }
}
