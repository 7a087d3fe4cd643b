/// What steps may ask GitLab before deciding, and ask it to do. Steps stay pure: the engine sends these through
/// its GitLab client and hands the answers back in `StepContext.gitlab`, as it hands back the host's probe output.
public enum GitLabQuery: Hashable, Sendable {
    /// POST /api/v4/runners/verify with a runner's own token (it is sent in the body, never in a URL).
    case verifyRunner(token: String, systemID: String)
    /// GET /api/v4/runners/:id with the inventory's access token.
    case runner(id: Int)
    /// GET …/variables/:key?filter[environment_scope]=… of a project or group, with the inventory's access token.
    case variable(owner: VariableOwnerID, key: String, environmentScope: String)
    /// GET /projects/:id/cluster_agents (the one named `name`), then GET …/:agent_id/tokens (active ones, no values).
    case clusterAgent(project: Int, name: String)
    /// GET /api/v4/runners?status=never_contacted (the runners the access token can see), then GET /runners/:id of
    /// each with this description: those whose maintenance note is this one. A runner provision created but could
    /// not write to config.toml (the run was interrupted, the host went away) is one of them: nobody has its token.
    case leftoverRunners(description: String, maintenanceNote: String)
}

/// A project or a group, by numeric id: whose CI/CD variable.
public enum VariableOwnerID: Hashable, Sendable, CustomStringConvertible {
    case project(Int)
    case group(Int)

    public var description: String {
        switch self {
        case .project(let id): "project \(id)"
        case .group(let id): "group \(id)"
        }
    }
}

/// A CI/CD variable as GitLab has it (or as a step wants it). The value is a secret: `description` leaves it out.
public struct VariableState: Sendable, Equatable, CustomStringConvertible {
    public var value: String
    /// "file" or "env_var".
    public var variableType: String
    public var protected: Bool
    public var masked: Bool
    public var raw: Bool
    /// GitLab's `description` of the variable; nil leaves it as it is on an update.
    public var note: String?

    public init(value: String, variableType: String, protected: Bool, masked: Bool, raw: Bool,
                note: String? = nil) {
        self.value = value
        self.variableType = variableType
        self.protected = protected
        self.masked = masked
        self.raw = raw
        self.note = note
    }

    public var description: String {
        "\(variableType) variable (\(protected ? "protected" : "not protected"), \(masked ? "masked" : "not masked"), \(raw ? "raw" : "expanded"))"
    }
}

/// A variable to create or update; the value never reaches a summary.
public struct VariableWrite: Sendable, Equatable {
    public var owner: VariableOwnerID
    public var key: String
    public var environmentScope: String
    public var state: VariableState

    public init(owner: VariableOwnerID, key: String, environmentScope: String, state: VariableState) {
        self.owner = owner
        self.key = key
        self.environmentScope = environmentScope
        self.state = state
    }
}

public enum GitLabAnswer: Sendable, Equatable {
    /// The token still authenticates runner `id`.
    case valid(id: Int)
    /// GitLab does not know the token any more (403): the runner was deleted.
    case invalid
    /// The runner's `status` (online, offline, stale, never_contacted, paused).
    /// The runner's `status` and, when GitLab said, the settings it keeps for it (tags, paused…).
    case runner(status: String, settings: RunnerCreation? = nil)
    /// The variable as GitLab has it; nil when the owner has no such variable in that scope.
    case variable(VariableState?)
    /// The agent and its active tokens; nil when the project has no agent of that name.
    case clusterAgent(AgentState?)
    /// Runners by id (`leftoverRunners`).
    case runnerIDs([Int])
    /// GitLab could not answer (unreachable, 5xx after retries, 401...): the message says why.
    case failed(String)
}

/// A GitLab agent for Kubernetes as GitLab has it.
public struct AgentState: Sendable, Equatable {
    public var id: Int
    /// Its active tokens (GitLab lists no revoked ones), oldest first.
    public var activeTokens: [AgentTokenState]

    public init(id: Int, activeTokens: [AgentTokenState]) {
        self.id = id
        self.activeTokens = activeTokens.sorted { $0.id < $1.id }
    }
}

/// One of an agent's tokens, without its value (GitLab shows that only once).
public struct AgentTokenState: Sendable, Equatable {
    public var id: Int
    public var name: String

    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }
}

/// A new token for an agent, put straight into a CI/CD variable: the token goes from GitLab's answer to the variable
/// inside the engine's GitLab client, so it is never shared with a step, shown or journaled.
public struct AgentTokenPublication: Sendable, Equatable {
    public var project: Int
    public var agentID: Int
    public var agentName: String
    public var tokenName: String
    public var tokenDescription: String
    /// The variable to write; its value and description are filled in with the new token and its id.
    public var variable: VariableWrite
    /// POST the variable (it is missing) rather than PUT it.
    public var createVariable: Bool

    public init(project: Int, agentID: Int, agentName: String, tokenName: String, tokenDescription: String,
                variable: VariableWrite, createVariable: Bool) {
        self.project = project
        self.agentID = agentID
        self.agentName = agentName
        self.tokenName = tokenName
        self.tokenDescription = tokenDescription
        self.variable = variable
        self.createVariable = createVariable
    }

    /// The variable's description, which records whose token it holds (GitLab never shows a token again).
    public static func variableDescription(agentName: String, tokenID: Int) -> String {
        "token \(tokenID) of GitLab agent \(agentName) (kept by provision)"
    }

    /// The token id a variable's description records for `agentName`; nil when it records none.
    public static func tokenID(inVariableDescription description: String?, agentName: String) -> Int? {
        guard let description, description.hasPrefix("token "),
              description.hasSuffix(" of GitLab agent \(agentName) (kept by provision)") else { return nil }
        return Int(description.dropFirst(6).prefix { $0 != " " })
    }
}

/// A runner to create in GitLab (POST /api/v4/user/runners), settings that live in GitLab rather than config.toml.
/// Also what GitLab says it keeps for an existing runner (GET /runners/:id).
public struct RunnerCreation: Sendable, Equatable {
    public var runnerType: String
    public var projectID: Int?
    public var groupID: Int?
    public var description: String
    public var tags: [String]
    public var runUntagged: Bool
    public var locked: Bool
    public var accessLevel: String
    public var maximumTimeout: Int?
    public var paused: Bool
    public var maintenanceNote: String

    public init(runnerType: String, projectID: Int? = nil, groupID: Int? = nil, description: String, tags: [String] = [],
                runUntagged: Bool = true, locked: Bool = false, accessLevel: String = "not_protected",
                maximumTimeout: Int? = nil, paused: Bool = false, maintenanceNote: String = "") {
        self.runnerType = runnerType
        self.projectID = projectID
        self.groupID = groupID
        self.description = description
        self.tags = tags
        self.runUntagged = runUntagged
        self.locked = locked
        self.accessLevel = accessLevel
        self.maximumTimeout = maximumTimeout
        self.paused = paused
        self.maintenanceNote = maintenanceNote
    }
}

/// Changes in GitLab. Results a later decision needs (a new runner's id and token) come back as shared values
/// under `sharedKey` ("<id> <token>"), treated as secrets like every shared value.
public enum GitLabRequest: Sendable, Equatable {
    /// With the inventory's access token (create_runner scope).
    case createRunner(RunnerCreation, sharedKey: String)
    /// With a legacy registration token (POST /api/v4/runners).
    case registerRunner(RunnerCreation, sharedKey: String)
    /// DELETE /api/v4/runners with the runner's own token: the runner is gone from GitLab.
    case deleteRunner(token: String, description: String)
    /// DELETE /api/v4/runners/:id with the access token, for a runner nobody has the token of (`leftoverRunners`);
    /// left alone if it has contacted GitLab since it was found.
    case deleteLeftoverRunner(id: Int, description: String)
    /// POST (create) or PUT (update) a CI/CD variable; its value stays out of every summary.
    case putVariable(VariableWrite, create: Bool)
    /// PUT /api/v4/runners/:id: GitLab's settings of a runner made as the inventory says (the runner stays).
    case updateRunner(id: Int, RunnerCreation)
    /// DELETE a CI/CD variable (in one environment scope); one already gone is fine.
    case deleteVariable(owner: VariableOwnerID, key: String, environmentScope: String)
    /// POST /projects/:id/cluster_agents: registers an agent.
    case createClusterAgent(project: Int, name: String)
    /// DELETE …/cluster_agents/:agent_id/tokens/:token_id: revokes a token (an agent has at most two active ones).
    case revokeAgentToken(project: Int, agentID: Int, tokenID: Int, agentName: String)
    /// A new agent token into a CI/CD variable, in one request so the token never leaves the GitLab client.
    case publishAgentToken(AgentTokenPublication)

    /// For plan and -v: never a token.
    public var summary: String {
        switch self {
        case .createRunner(let runner, _): "create runner \(runner.description) in GitLab (\(runner.runnerType), tags \(runner.tags.joined(separator: ",")))"
        case .registerRunner(let runner, _): "register runner \(runner.description) with the registration token (deprecated)"
        case .deleteRunner(_, let description): "delete runner \(description) in GitLab"
        case .deleteLeftoverRunner(let id, let description):
            "delete runner \(description) (#\(id)) in GitLab: an earlier run created it but never wrote it to config.toml (never contacted)"
        case .putVariable(let variable, let create):
            "\(create ? "create" : "update") CI/CD variable \(variable.key) (\(variable.state), environment scope \(variable.environmentScope)) of \(variable.owner) in GitLab"
        case .updateRunner(let id, let runner):
            "update runner \(runner.description) (#\(id)) in GitLab (tags \(runner.tags.joined(separator: ",")), run untagged \(runner.runUntagged), \(runner.paused ? "paused" : "not paused"), \(runner.locked ? "locked" : "not locked"), \(runner.accessLevel))"
        case .deleteVariable(let owner, let key, let scope):
            "delete CI/CD variable \(key) (environment scope \(scope)) of \(owner) in GitLab"
        case .createClusterAgent(let project, let name): "register GitLab agent \(name) in project \(project)"
        case .revokeAgentToken(let project, _, let tokenID, let name):
            "revoke token \(tokenID) of GitLab agent \(name) in project \(project) (an agent has at most two active tokens)"
        case .publishAgentToken(let publication):
            "create a token for GitLab agent \(publication.agentName) and \(publication.createVariable ? "create" : "update") CI/CD variable \(publication.variable.key) (\(publication.variable.state), environment scope \(publication.variable.environmentScope)) of project \(publication.project) with it"
        }
    }
}
