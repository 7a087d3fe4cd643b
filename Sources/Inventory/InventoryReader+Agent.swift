import Yams

// Reading `gitlab.agent`: a GitLab agent for Kubernetes and the CI/CD variable that keeps its token.
extension InventoryReader {
    static let agentKeys = ["name", "projectId", "variableKey", "environmentScope"]

    /// `account` is the service account as read (nil when absent or invalid): its projectId is the default project.
    mutating func readAgent(_ entry: Entry, account: ServiceAccountSettings?, accountEntry: Entry?,
                            hasK3sBlock: Bool) -> AgentSettings? {
        guard let fields = fields(of: entry.value, named: "agent", allowed: Self.agentKeys, context: "in agent",
                                  fallback: entry.keyLocation) else { return nil }
        var valid = true
        if !hasK3sBlock {
            error("agent is the GitLab agent for a k3s cluster, but the inventory has no k3s block: add one, or remove "
                  + "agent", at: entry.keyLocation)
            valid = false
        }
        require(["name"], in: fields, owner: "agent")
        var name: String?
        var projectId: Int?
        var variableKey = "GITLAB_AGENT_TOKEN"
        var environmentScope = "*"
        for entry in fields.entries {
            switch entry.key {
            case "name":
                guard let value = string(entry) else { valid = false; continue }
                // GitLab's rule for agent names, which is Kubernetes' DNS label.
                if !Self.isDNSLabel(value) {
                    error("agent name '\(value)' is invalid: GitLab takes at most 63 lowercase letters, digits and '-', "
                          + "starting and ending with a letter or digit", at: valueLocation(entry))
                    valid = false
                }
                name = value
            case "projectId":
                guard let id = integer(entry, in: 1...Int.max) else { valid = false; continue }
                projectId = id
            case "variableKey":
                guard let key = string(entry) else { valid = false; continue }
                if !Self.isVariableKey(key) {
                    error("variableKey '\(key)' is invalid: GitLab takes at most 255 letters, digits and '_'",
                          at: valueLocation(entry))
                    valid = false
                }
                variableKey = key
            case "environmentScope":
                guard let scope = string(entry) else { valid = false; continue }
                environmentScope = scope
            default: break
            }
        }
        if projectId == nil, fields["projectId"] == nil {
            if let account, let id = account.projectId {
                projectId = id
            } else {
                let why = accountEntry == nil ? "there is no serviceAccount to take it from"
                    : account?.groupId != nil ? "serviceAccount names a group, and an agent belongs to a project"
                    : "serviceAccount has no projectId to take it from"
                error("agent needs projectId, the project it is registered in (\(why))", at: fields.location)
                valid = false
            }
        }
        if valid, let account, account.projectId == projectId, account.variableKey == variableKey,
           account.environmentScope == environmentScope {
            error("agent's variableKey \(variableKey) is the variable serviceAccount writes its kubeconfig to: choose "
                  + "another, such as GITLAB_AGENT_TOKEN", at: fields["variableKey"].map(valueLocation) ?? fields.location)
            valid = false
        }
        guard valid, let name, let projectId else { return nil }
        return AgentSettings(name: name, projectId: projectId, variableKey: variableKey, environmentScope: environmentScope)
    }

    /// GitLab's rule for CI/CD variable keys.
    static func isVariableKey(_ key: String) -> Bool {
        key.count <= 255 && !key.isEmpty && key.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic
                                                                             || ("0"..."9").contains($0) || $0 == "_") }
    }
}
