import ProvisionBasics

/// What one host is, as read from the host itself.
public struct HostFacts: Sendable, Equatable, Encodable {
    public struct OS: Sendable, Equatable, Encodable {
        public var id: String?
        public var versionId: String?
        public var versionCodename: String?
        public var prettyName: String?

        enum CodingKeys: String, CodingKey { case id, versionId, versionCodename, prettyName }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(versionId, forKey: .versionId)
            try container.encode(versionCodename, forKey: .versionCodename)
            try container.encode(prettyName, forKey: .prettyName)
        }

        public init(id: String? = nil, versionId: String? = nil, versionCodename: String? = nil, prettyName: String? = nil) {
            self.id = id
            self.versionId = versionId
            self.versionCodename = versionCodename
            self.prettyName = prettyName
        }
    }

    /// Installed versions; nil when absent.
    public struct Versions: Sendable, Equatable, Encodable {
        public var k3s: String?
        public var docker: String?
        public var gitlabRunner: String?

        enum CodingKeys: String, CodingKey { case k3s, docker, gitlabRunner }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(k3s, forKey: .k3s)
            try container.encode(docker, forKey: .docker)
            try container.encode(gitlabRunner, forKey: .gitlabRunner)
        }

        public init(k3s: String? = nil, docker: String? = nil, gitlabRunner: String? = nil) {
            self.k3s = k3s
            self.docker = docker
            self.gitlabRunner = gitlabRunner
        }
    }

    public var hostname: String?
    public var os: OS
    /// `uname -m`: x86_64, aarch64, armv7l.
    public var arch: String?
    /// `dpkg --print-architecture`: amd64, arm64, armhf (what apt sources need).
    public var dpkgArch: String?
    public var kernel: String?
    /// The device-tree model (e.g. "Raspberry Pi 4 Model B Rev 1.5"); nil on boards without one.
    public var board: String?
    public var memoryBytes: Int?
    /// Whether the kernel has the memory cgroup enabled (k3s needs it).
    public var memoryCgroup: Bool?
    public var cgroupVersion: Int?
    public var bootId: String?
    public var kernelCmdline: String?
    public var versions: Versions
    /// Each versioned program as it was found (by facts key): what the next read may reuse while the file is the
    /// same. Not part of the facts shown.
    public var programs: [String: ProgramVersion] = [:]

    public var isRaspberryPi: Bool { board?.hasPrefix("Raspberry Pi") ?? false }

    enum CodingKeys: String, CodingKey {
        case hostname, os, arch, dpkgArch, kernel, board, raspberryPi, memoryBytes, memoryCgroup, cgroupVersion
        case bootId, kernelCmdline, versions
    }

    /// Absent values are written as null, not left out: a script reading the JSON sees every key.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hostname, forKey: .hostname)
        try container.encode(os, forKey: .os)
        try container.encode(arch, forKey: .arch)
        try container.encode(dpkgArch, forKey: .dpkgArch)
        try container.encode(kernel, forKey: .kernel)
        try container.encode(board, forKey: .board)
        try container.encode(isRaspberryPi, forKey: .raspberryPi)
        try container.encode(memoryBytes, forKey: .memoryBytes)
        try container.encode(memoryCgroup, forKey: .memoryCgroup)
        try container.encode(cgroupVersion, forKey: .cgroupVersion)
        try container.encode(bootId, forKey: .bootId)
        try container.encode(kernelCmdline, forKey: .kernelCmdline)
        try container.encode(versions, forKey: .versions)
    }

    public init(hostname: String? = nil, os: OS = OS(), arch: String? = nil, dpkgArch: String? = nil,
                kernel: String? = nil, board: String? = nil, memoryBytes: Int? = nil, memoryCgroup: Bool? = nil,
                cgroupVersion: Int? = nil, bootId: String? = nil, kernelCmdline: String? = nil,
                versions: Versions = Versions()) {
        self.hostname = hostname
        self.os = os
        self.arch = arch
        self.dpkgArch = dpkgArch
        self.kernel = kernel
        self.board = board
        self.memoryBytes = memoryBytes
        self.memoryCgroup = memoryCgroup
        self.cgroupVersion = cgroupVersion
        self.bootId = bootId
        self.kernelCmdline = kernelCmdline
        self.versions = versions
    }
}
