import Yams

// Reading `gitlab.serviceAccount`: the cluster's service account for GitLab and the CI/CD variable it becomes.
extension InventoryReader {
    static let serviceAccountKeys = ["name", "namespace", "clusterRole", "projectId", "groupId", "environmentScope",
                                     "apiURL", "variableKey"]

    /// What the service account is checked against: the k3s block (its tlsSan) and the first server's address.
    struct ClusterView {
        var hasK3sBlock = false
        var k3s: K3sSettings?
        var firstServerAddress: String?
    }

    mutating func readServiceAccount(_ entry: Entry, cluster: ClusterView) -> ServiceAccountSettings? {
        guard let fields = fields(of: entry.value, named: "serviceAccount", allowed: Self.serviceAccountKeys,
                                  context: "in serviceAccount", fallback: entry.keyLocation) else { return nil }
        var account = ServiceAccountSettings()
        var valid = true
        if !cluster.hasK3sBlock {
            error("serviceAccount lives in the k3s cluster, but the inventory has no k3s block: add one, or remove "
                  + "serviceAccount", at: entry.keyLocation)
            valid = false
        }
        for entry in fields.entries {
            switch entry.key {
            case "name", "namespace":
                guard let name = string(entry) else { valid = false; continue }
                if !Self.isDNSLabel(name) {
                    error("\(entry.key) '\(name)' is invalid: use at most 63 lowercase letters, digits and '-', "
                          + "starting and ending with a letter or digit", at: valueLocation(entry))
                    valid = false
                }
                if entry.key == "name" { account.name = name } else { account.namespace = name }
            case "clusterRole":
                guard let role = string(entry) else { valid = false; continue }
                if role.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "/" }) {
                    error("clusterRole '\(role)' is not a ClusterRole name such as cluster-admin", at: valueLocation(entry))
                    valid = false
                }
                account.clusterRole = role
            case "projectId":
                guard let id = integer(entry, in: 1...Int.max) else { valid = false; continue }
                account.projectId = id
            case "groupId":
                guard let id = integer(entry, in: 1...Int.max) else { valid = false; continue }
                account.groupId = id
            case "environmentScope":
                guard let scope = string(entry) else { valid = false; continue }
                account.environmentScope = scope
            case "variableKey":
                guard let key = string(entry) else { valid = false; continue }
                // GitLab's rule for variable keys.
                if key.count > 255 || !key.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic
                                                                       || ("0"..."9").contains($0) || $0 == "_") }) {
                    error("variableKey '\(key)' is invalid: GitLab takes at most 255 letters, digits and '_'",
                          at: valueLocation(entry))
                    valid = false
                }
                account.variableKey = key
            case "apiURL":
                guard let url = string(entry) else { valid = false; continue }
                guard let host = Self.httpsHost(url) else {
                    error("apiURL must be an https:// URL of the cluster's API such as 'https://k3s.example.com:6443', "
                          + "got '\(url)'", at: valueLocation(entry))
                    valid = false
                    continue
                }
                account.apiURL = url
                guard cluster.hasK3sBlock else { continue }
                let names = (cluster.k3s?.tlsSan ?? []) + (cluster.firstServerAddress.map { [$0] } ?? [])
                if cluster.k3s != nil, !names.contains(where: { Self.certificateName($0, covers: host) }) {
                    error("apiURL's host '\(host)' is not in the API's certificate: add it to k3s.tlsSan, or use the "
                          + "first server's address\(cluster.firstServerAddress.map { " (\($0))" } ?? "")",
                          at: valueLocation(entry))
                    valid = false
                }
            default: break
            }
        }
        switch (fields["projectId"], fields["groupId"]) {
        case (nil, nil):
            error("serviceAccount needs projectId or groupId: the project or group whose CI/CD variable "
                  + "\(account.variableKey) gets the kubeconfig", at: fields.location)
            valid = false
        case (let project?, let group?):
            let (first, second) = project.keyLocation.line <= group.keyLocation.line ? (project, group) : (group, project)
            error("serviceAccount publishes its kubeconfig to one project or one group: set projectId or groupId, not "
                  + "both (the other is at \(Self.reference(to: first.keyLocation, from: second.keyLocation)))",
                  at: second.keyLocation)
            valid = false
        default: break
        }
        return valid ? account : nil
    }

    /// A DNS-1123 label, as Kubernetes wants for names of namespaces and service accounts.
    static func isDNSLabel(_ name: String) -> Bool {
        func alphanumeric(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) }
        return (1...63).contains(name.count) && name.unicodeScalars.allSatisfy { alphanumeric($0) || $0 == "-" }
            && name.unicodeScalars.first.map(alphanumeric) == true && name.unicodeScalars.last.map(alphanumeric) == true
    }

    /// The host of an https:// URL (without brackets or port), or nil when it is not one.
    static func httpsHost(_ url: String) -> String? {
        guard url.hasPrefix("https://"),
              !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "\"" || $0 == "\\" }) else { return nil }
        let authority = url.dropFirst(8).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.contains("@") else { return nil }
        var host = Substring(authority)
        var port: Substring = ""
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            port = authority[authority.index(after: close)...]
            if !port.isEmpty { guard port.hasPrefix(":") else { return nil }; port = port.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
            guard !port.isEmpty else { return nil }
        }
        if !port.isEmpty {
            guard port.allSatisfy({ ("0"..."9").contains($0) }), let number = Int(port), (1...65535).contains(number) else { return nil }
        }
        guard (try? InventorySyntax.address(String(host)).get()) != nil else { return nil }
        return String(host)
    }

    /// Whether a certificate name (a tls-san entry, possibly `*.domain`, or an address) covers `host`.
    static func certificateName(_ name: String, covers host: String) -> Bool {
        let canonical = { (text: String) in (try? InventorySyntax.address(text).get())?.canonical ?? text.lowercased() }
        if name.hasPrefix("*.") {
            let suffix = "." + String(name.dropFirst(2)).lowercased()
            let lower = host.lowercased()
            return lower.hasSuffix(suffix) && !lower.dropLast(suffix.count).contains(".") && lower.count > suffix.count
        }
        return canonical(name) == canonical(host)
    }
}
