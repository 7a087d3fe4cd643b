/// What a host does in the cluster.
public enum Role: String, Sendable, CaseIterable, Codable {
    /// Runs the k3s server (control plane; a k3s server is also a node).
    case server
    /// Joins the k3s server as a k3s agent.
    case agent
    /// Runs a CI runner.
    case runner
}

/// One Kubernetes-style node label, `key: value`.
public struct HostLabel: Sendable, Equatable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// `HostLabel` is the unambiguous name: a module named Inventory cannot qualify `Inventory.Label`.
public typealias Label = HostLabel

/// One entry of `hosts`, with its SSH settings fully resolved.
public struct InventoryHost: Sendable, Equatable {
    public var name: String
    public var address: String
    public var roles: [Role]
    /// In the order written in the file.
    public var labels: [HostLabel]
    /// Kubernetes taints, `key[=value]:Effect`, in the order written.
    public var taints: [String]
    /// The k3s node name; the host's name unless the inventory sets `nodeName`.
    public var nodeName: String
    public var ssh: SSHSettings
    /// Where the host's entry starts in the inventory file.
    public var location: SourceLocation

    public init(name: String, address: String, roles: [Role], labels: [HostLabel] = [], taints: [String] = [],
                nodeName: String? = nil, ssh: SSHSettings, location: SourceLocation) {
        self.name = name
        self.address = address
        self.roles = roles
        self.labels = labels
        self.taints = taints
        self.nodeName = nodeName ?? name
        self.ssh = ssh
        self.location = location
    }

    public func has(_ role: Role) -> Bool { roles.contains(role) }

    /// The value of the label `key`, if the host has it.
    public func label(_ key: String) -> String? {
        labels.first { $0.key == key }?.value
    }
}

/// A loaded, valid inventory.
public struct Inventory: Sendable, Equatable {
    /// Absolute path of the inventory file.
    public var path: String
    /// In file order.
    public var hosts: [InventoryHost]
    public var k3s: K3sSettings?
    /// The Docker hosts with the role `runner` get; nil means the defaults (docker.io from Debian).
    public var docker: DockerSettings?
    /// The GitLab runners register with; set whenever some host has the role `runner`.
    public var gitlab: GitLabSettings?
    /// Every secret value (passwords, passphrases, the k3s token, GitLab tokens), once each, for redacting logs.
    public var secrets: [String]

    public init(path: String, hosts: [InventoryHost], k3s: K3sSettings? = nil, docker: DockerSettings? = nil,
                gitlab: GitLabSettings? = nil, secrets: [String] = []) {
        self.path = path
        self.hosts = hosts
        self.k3s = k3s
        self.docker = docker
        self.gitlab = gitlab
        self.secrets = secrets
    }

    public func host(named name: String) -> InventoryHost? {
        hosts.first { $0.name == name }
    }

    /// The hosts that have `role`, in file order.
    public func hosts(with role: Role) -> [InventoryHost] {
        hosts.filter { $0.has(role) }
    }

    /// The k3s servers, in file order.
    public var servers: [InventoryHost] { hosts(with: .server) }

    /// The server that starts the cluster (and generates the token when the inventory has none); the others join it.
    public var firstServer: InventoryHost? { servers.first }
}
