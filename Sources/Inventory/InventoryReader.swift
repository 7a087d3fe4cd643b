import Yams

/// Walks a composed inventory and builds the model, collecting every problem on the way instead of stopping at the
/// first, so that one run shows the user everything to fix.
struct InventoryReader {
    /// The path as shown in diagnostics.
    let file: String
    /// Absolute folder of the inventory, the base of relative paths.
    let baseDirectory: String
    let environment: [String: String]
    /// Absolute, what `~` stands for.
    let home: String
    let renamedKeys: [TextPosition: String]
    var diagnostics: [Diagnostic] = []
    var secrets: [String] = []

    static let topLevelKeys = ["ssh", "k3s", "docker", "gitlab", "hosts"]
    static let hostKeys = ["name", "address", "roles", "labels", "taints", "nodeName", "ssh"]
    static let k3sKeys = ["version", "token", "airgap", "installScriptURL", "tlsSan", "disable",
                          "writeKubeconfigMode", "config"]

    init(file: String, baseDirectory: String, environment: [String: String], home: String,
         renamedKeys: [TextPosition: String]) {
        self.file = file
        self.baseDirectory = baseDirectory
        self.environment = environment
        self.home = home
        self.renamedKeys = renamedKeys
    }

    /// A host as read, possibly incomplete, kept for the checks across hosts.
    private struct HostDraft {
        var location: SourceLocation
        var name: String?
        var nameLocation: SourceLocation?
        var address: String?
        var canonicalAddress: String?
        var addressLocation: SourceLocation?
        var roles: [Role]?
        var rolesLocation: SourceLocation?
        var labels: [HostLabel] = []
        var taints: [String] = []
        var nodeName: String?
        var nodeNameLocation: SourceLocation?
        var ssh: SSHSettings?
    }

    /// The inventory, or nil when there were problems (see `diagnostics`).
    mutating func read(_ root: Node?, path: String) -> Inventory? {
        let start = SourceLocation(file: file, line: 1, column: 1)
        guard let root else {
            error("the inventory is empty; it needs at least a 'hosts' list", at: start)
            return nil
        }
        guard let top = fields(of: root, named: "the inventory", allowed: Self.topLevelKeys,
                               context: "at the top level", fallback: start, ignoringExtensions: true)
        else { return nil }
        require(["hosts"], in: top, owner: "the inventory")

        var defaults = SSHBlock()
        if let entry = top["ssh"] {
            defaults = readSSH(entry, isHost: false)
        }
        let k3s = top["k3s"].flatMap { readK3s($0) }
        // "~/.ssh/known_hosts" always resolves.
        let defaultKnownHosts = (try? InventoryPaths.resolve(SSHSettings.defaultKnownHosts, home: home,
                                                             baseDirectory: baseDirectory).get()) ?? home

        let docker = top["docker"].flatMap { readDocker($0) }

        var drafts: [HostDraft] = []
        if let entry = top["hosts"] {
            switch entry.value {
            case .sequence(let list) where list.isEmpty:
                error("hosts must list at least one host", at: entry.keyLocation)
            case .sequence(let list):
                drafts = list.compactMap { readHost($0, defaults: defaults, defaultKnownHosts: defaultKnownHosts) }
                checkAcrossHosts(drafts, hostsKey: entry.keyLocation)
                checkCluster(drafts, hostsKey: entry.keyLocation)
            default:
                error("hosts must be a list of hosts, got \(describe(entry.value))", at: valueLocation(entry))
            }
        }

        let runnerHosts = drafts.filter { $0.roles?.contains(.runner) == true }
            .map { RunnerHost(name: $0.name, rolesLocation: $0.rolesLocation) }
        let cluster = ClusterView(hasK3sBlock: top["k3s"] != nil, k3s: k3s,
                                  firstServerAddress: drafts.first { $0.roles?.contains(.server) == true }?.address)
        let gitlab = readGitLab(top["gitlab"], runnerHosts: runnerHosts, hostsKey: top["hosts"]?.keyLocation,
                                cluster: cluster)

        guard diagnostics.isEmpty else { return nil }
        let hosts = drafts.compactMap { draft -> InventoryHost? in
            guard let name = draft.name, let address = draft.address, let roles = draft.roles, let ssh = draft.ssh
            else { return nil }
            return InventoryHost(name: name, address: address, roles: roles, labels: draft.labels,
                                 taints: draft.taints, nodeName: draft.nodeName, ssh: ssh, location: draft.location)
        }
        return Inventory(path: path, hosts: hosts, k3s: k3s, docker: docker, gitlab: gitlab, secrets: secrets)
    }

    // MARK: Blocks

    private mutating func readSSH(_ entry: Entry, isHost: Bool) -> SSHBlock {
        var block = SSHBlock()
        guard let fields = fields(of: entry.value, named: "ssh", allowed: SSHBlock.keys, context: "in ssh",
                                  fallback: entry.keyLocation) else { return block }
        for entry in fields.entries {
            if isNull(entry.value), SSHBlock.clearableKeys.contains(entry.key) {
                block.cleared.insert(entry.key)
                continue
            }
            switch entry.key {
            case "user": block.user = string(entry)
            case "port": block.port = integer(entry, in: 1...65535)
            case "keyPath": block.keyPath = path(entry)
            case "keyPassphrase": block.keyPassphrase = string(entry, secret: true)
            case "password": block.password = string(entry, secret: true)
            case "agent": block.agent = boolean(entry)
            case "knownHosts": block.knownHosts = path(entry)
            case "hostKeyPolicy": block.hostKeyPolicy = choice(entry, of: HostKeyPolicy.self)
            case "hostKeyFingerprint":
                guard isHost else {
                    error("hostKeyFingerprint is only allowed in a host's ssh block, since each host has its own key",
                          at: entry.keyLocation)
                    continue
                }
                guard let fingerprint = string(entry) else { continue }
                if let problem = InventorySyntax.fingerprintProblem(fingerprint) {
                    error(problem, at: valueLocation(entry))
                } else {
                    block.hostKeyFingerprint = fingerprint
                }
            case "sudoPassword": block.sudoPassword = string(entry, secret: true)
            case "connectTimeout": block.connectTimeout = seconds(entry)
            case "keepalive": block.keepalive = integer(entry, in: 0...Int.max)
            default: break
            }
        }
        return block
    }

    // MARK: Hosts

    private mutating func readHost(_ node: Node, defaults: SSHBlock, defaultKnownHosts: String) -> HostDraft? {
        guard let fields = fields(of: node, named: "each host", allowed: Self.hostKeys, context: "in host")
        else { return nil }
        require(["name", "address", "roles"], in: fields, owner: "host")
        var host = HostDraft(location: fields.location)

        if let entry = fields["name"], let name = string(entry) {
            if let problem = InventorySyntax.hostNameProblem(name) {
                error(problem, at: valueLocation(entry))
            } else {
                host.name = name
                host.nameLocation = valueLocation(entry)
            }
        }
        if let entry = fields["address"], let text = string(entry) {
            switch InventorySyntax.address(text) {
            case .success(let address):
                host.address = text
                host.canonicalAddress = address.canonical
                host.addressLocation = valueLocation(entry)
            case .failure(let problem):
                error(problem.message, at: valueLocation(entry))
            }
        }
        if let entry = fields["roles"] {
            host.roles = readRoles(entry)
            host.rolesLocation = valueLocation(entry)
        }
        if let entry = fields["labels"] {
            host.labels = readLabels(entry)
        }
        if let entry = fields["taints"] {
            host.taints = readTaints(entry)
        }
        if let entry = fields["nodeName"], let nodeName = string(entry) {
            if let problem = InventorySyntax.nodeNameProblem(nodeName) {
                error(problem, at: valueLocation(entry))
            } else {
                host.nodeName = nodeName
                host.nodeNameLocation = valueLocation(entry)
            }
        }

        var overrides = SSHBlock()
        if let entry = fields["ssh"] {
            overrides = readSSH(entry, isHost: true)
        }
        let ssh = defaults.overridden(by: overrides).resolved(defaultKnownHosts: defaultKnownHosts)
        if !ssh.useAgent, ssh.keyPath == nil, ssh.password == nil {
            error("host \(host.name.map { "'\($0)' " } ?? "")has no way to log in: agent is false and neither "
                  + "keyPath nor password is set", at: fields.location)
        }
        host.ssh = ssh
        return host
    }

    private mutating func readRoles(_ entry: Entry) -> [Role]? {
        guard case .sequence(let list) = entry.value else {
            error("roles must be a list such as [server], got \(describe(entry.value))", at: valueLocation(entry))
            return nil
        }
        guard !list.isEmpty else {
            error("roles must list at least one of 'server', 'agent' or 'runner'", at: valueLocation(entry))
            return nil
        }
        var roles: [Role] = []
        var valid = true
        for item in list {
            let itemEntry = Entry(key: "role", keyLocation: location(of: item, or: entry.keyLocation), value: item)
            guard let text = string(itemEntry) else {
                valid = false
                continue
            }
            guard let role = Role(rawValue: text) else {
                let names = Role.allCases.map(\.rawValue)
                error("unknown role '\(Self.shortened(text))'; expected \(Self.alternatives(names))"
                      + Suggestion.hint(for: text, among: names), at: itemEntry.keyLocation)
                valid = false
                continue
            }
            if roles.contains(role) {
                error("role '\(role.rawValue)' is listed twice", at: itemEntry.keyLocation)
                continue
            }
            roles.append(role)
        }
        if roles.contains(.server), roles.contains(.agent) {
            error("a host cannot be both server and agent: a k3s server already runs the agent",
                  at: valueLocation(entry))
            valid = false
        }
        return valid ? roles : nil
    }

    private mutating func readLabels(_ entry: Entry) -> [HostLabel] {
        guard let fields = fields(of: entry.value, named: "labels", allowed: nil, context: "in labels",
                                  fallback: entry.keyLocation) else { return [] }
        var labels: [HostLabel] = []
        for label in fields.entries {
            if let problem = InventorySyntax.labelKeyProblem(label.key) {
                error(problem, at: label.keyLocation)
                continue
            }
            // An empty value is a valid Kubernetes label value.
            let value = isNull(label.value) ? ""
                : scalarText(label.value, named: "label '\(label.key)'", expected: "a string",
                             at: label.keyLocation)?.text
            guard let value else { continue }
            if let problem = InventorySyntax.labelValueProblem(value, key: label.key) {
                error(problem, at: valueLocation(label))
                continue
            }
            labels.append(HostLabel(key: label.key, value: value))
        }
        return labels
    }

    private mutating func readTaints(_ entry: Entry) -> [String] {
        guard let items = stringList(entry, example: "[\"dedicated=ci:NoSchedule\"]") else { return [] }
        var taints: [String] = []
        var seen: [String: SourceLocation] = [:]
        for (taint, location) in items {
            if let problem = InventorySyntax.taintProblem(taint) {
                error(problem, at: location)
                continue
            }
            // Kubernetes allows one taint per key and effect.
            let identity = InventorySyntax.taintIdentity(taint)
            if let first = seen[identity] {
                error("taint '\(taint)' repeats the key and effect of the taint at "
                      + Self.reference(to: first, from: location), at: location)
                continue
            }
            seen[identity] = location
            taints.append(taint)
        }
        return taints
    }

    // MARK: Across hosts

    private mutating func checkAcrossHosts(_ hosts: [HostDraft], hostsKey: SourceLocation) {
        var names: [String: SourceLocation] = [:]
        var addresses: [String: HostDraft] = [:]
        for host in hosts {
            if let name = host.name, let location = host.nameLocation {
                if let first = names[name] {
                    let reference = Self.reference(to: first, from: location)
                    error("duplicate host name '\(name)'; first defined at \(reference)", at: location)
                } else {
                    names[name] = location
                }
            }
            if let address = host.canonicalAddress, let location = host.addressLocation, let port = host.ssh?.port {
                // Hosts behind one address on different ports (NAT, containers) are distinct.
                let key = "\(address) port \(port)"
                if let first = addresses[key] {
                    let owner = first.name.map { "host '\($0)'" } ?? "another host"
                    let reference = Self.reference(to: first.addressLocation ?? first.location, from: location)
                    error("duplicate address '\(host.address ?? address)' (port \(port)); \(owner) at \(reference) "
                          + "already uses it", at: location)
                } else {
                    addresses[key] = host
                }
            }
        }
        var nodeNames: [String: HostDraft] = [:]
        for host in hosts {
            guard let nodeName = host.nodeName ?? host.name,
                  let location = host.nodeNameLocation ?? host.nameLocation else { continue }
            if let first = nodeNames[nodeName] {
                // Two hosts of the same name are already reported as such.
                guard host.nodeName != nil || first.nodeName != nil else { continue }
                let owner = first.name.map { "host '\($0)'" } ?? "another host"
                let reference = Self.reference(to: first.nodeNameLocation ?? first.nameLocation ?? first.location,
                                               from: location)
                error("duplicate node name '\(nodeName)'; \(owner) at \(reference) already uses it "
                      + "(set nodeName to tell them apart)", at: location)
            } else {
                nodeNames[nodeName] = host
            }
        }
        let roles = hosts.compactMap(\.roles).flatMap { $0 }
        if roles.contains(.agent), !roles.contains(.server) {
            error("hosts has agents but no server: agents join a k3s server, so give one host the role 'server'",
                  at: hostsKey)
        }
    }

    /// The checks that concern the k3s cluster as a whole.
    /// Roles without a k3s block are allowed (they say what a host is for); k3s is installed only with a block.
    private mutating func checkCluster(_ hosts: [HostDraft], hostsKey: SourceLocation) {
        let servers = hosts.filter { $0.roles?.contains(.server) == true }.count
        if servers > 1, servers.isMultiple(of: 2) {
            error("hosts has \(servers) servers, but embedded etcd needs a majority of servers up, and \(servers) "
                  + "servers tolerate no more failures than \(servers - 1); use 1 server or an odd number of 3 or more",
                  at: hostsKey)
        }
    }
}
