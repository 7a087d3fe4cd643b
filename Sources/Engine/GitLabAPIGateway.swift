import GitLab
import ProvisionBasics
import Steps

/// Steps' GitLab queries and actions, through the GitLab REST client.
public struct GitLabAPIGateway: GitLabGateway {
    let client: GitLabClient
    let registrationToken: Secret?

    /// `client` carries the access token (create_runner); `registrationToken` is the legacy one, if any.
    public init(client: GitLabClient, registrationToken: Secret? = nil) {
        self.client = client
        self.registrationToken = registrationToken
    }

    public func answer(_ query: GitLabQuery) async -> GitLabAnswer {
        do {
            switch query {
            case .verifyRunner(let token, let systemID):
                switch try await client.verifyRunner(token: Secret(token), systemID: systemID) {
                case .valid(let id, _): return .valid(id: id ?? 0)
                case .invalid, .orphaned: return .invalid
                }
            case .runner(let id):
                let runner = try await client.runner(id: id)
                let settings = RunnerCreation(
                    runnerType: runner.runnerType?.rawValue ?? "", description: runner.description ?? "",
                    tags: runner.tags ?? [], runUntagged: runner.runUntagged ?? true, locked: runner.locked ?? false,
                    accessLevel: runner.accessLevel?.rawValue ?? "not_protected", maximumTimeout: runner.maximumTimeout,
                    paused: runner.paused ?? false, maintenanceNote: runner.maintenanceNote ?? "")
                return .runner(status: runner.status?.rawValue ?? "never_contacted", settings: settings)
            case .variable(let owner, let key, let scope):
                guard let found = try await client.variable(key, of: Self.owner(owner), environmentScope: scope) else {
                    return .variable(nil)
                }
                return .variable(VariableState(value: found.value.revealed, variableType: found.variableType.rawValue,
                                               protected: found.protected, masked: found.masked, raw: found.raw,
                                               note: found.description))
            case .clusterAgent(let project, let name):
                guard let agent = try await client.clusterAgents(project: String(project)).first(where: { $0.name == name }) else {
                    return .clusterAgent(nil)
                }
                let tokens = try await client.clusterAgentTokens(agentID: agent.id, project: String(project))
                return .clusterAgent(AgentState(id: agent.id, activeTokens: tokens.filter { ($0.status ?? "active") == "active" }
                    .map { AgentTokenState(id: $0.id, name: $0.name) }))
            case .leftoverRunners(let description, let note):
                // The list has no maintenance note; only runners of this description are read one by one.
                let candidates = try await client.listRunners(filter: RunnerFilter(status: .neverContacted))
                    .filter { $0.description == description }
                var ids: [Int] = []
                for candidate in candidates {
                    let runner = try await client.runner(id: candidate.id)
                    if runner.maintenanceNote == note && runner.status == .neverContacted { ids.append(runner.id) }
                }
                return .runnerIDs(ids.sorted())
            }
        } catch {
            return .failed(String(describing: error))
        }
    }

    public func perform(_ request: GitLabRequest) async throws -> [String: String] {
        switch request {
        case .createRunner(let runner, let key):
            let created = try await client.createRunner(Self.scope(runner), settings: Self.settings(runner))
            return [key: "\(created.id) \(created.token.revealed)"]
        case .registerRunner(let runner, let key):
            guard let registrationToken else { throw StepError("gitlab.registrationToken is not set") }
            let created = try await client.registerLegacy(registrationToken: registrationToken, settings: Self.settings(runner))
            return [key: "\(created.id) \(created.token.revealed)"]
        case .deleteRunner(let token, _):
            try await client.deleteRunner(byToken: Secret(token))
            return [:]
        case .deleteLeftoverRunner(let id, _):
            // Found never contacted when the step decided; one that has talked to GitLab since is someone's.
            if try await client.runner(id: id).status == .neverContacted { try await client.deleteRunner(id: id) }
            return [:]
        case .putVariable(let write, let create):
            try await put(write, create: create)
            return [:]
        case .createClusterAgent(let project, let name):
            _ = try await client.createClusterAgent(named: name, project: String(project))
            return [:]
        case .revokeAgentToken(let project, let agentID, let tokenID, _):
            try await client.revokeClusterAgentToken(id: tokenID, agentID: agentID, project: String(project))
            return [:]
        case .updateRunner(let id, let runner):
            _ = try await client.updateRunner(id: id, settings: Self.settings(runner))
            return [:]
        case .deleteVariable(let owner, let key, let scope):
            try await client.deleteVariable(key, of: Self.owner(owner), environmentScope: scope)
            return [:]
        case .publishAgentToken(let publication):
            // The client's redactor learns the token as it arrives; nothing of it is returned.
            let token = try await client.createClusterAgentToken(agentID: publication.agentID, project: String(publication.project),
                                                                 name: publication.tokenName,
                                                                 description: publication.tokenDescription)
            var write = publication.variable
            write.state.value = token.token?.revealed ?? ""
            write.state.note = AgentTokenPublication.variableDescription(agentName: publication.agentName,
                                                                                tokenID: token.id)
            try await put(write, create: publication.createVariable)
            return [:]
        }
    }

    private func put(_ write: VariableWrite, create: Bool) async throws {
        let variable = CIVariable(key: write.key, value: Secret(write.state.value),
                                  variableType: VariableType(rawValue: write.state.variableType) ?? .envVariable,
                                  protected: write.state.protected, masked: write.state.masked,
                                  raw: write.state.raw, environmentScope: write.environmentScope,
                                  description: write.state.note)
        if create {
            _ = try await client.createVariable(variable, in: Self.owner(write.owner))
        } else {
            _ = try await client.updateVariable(variable, in: Self.owner(write.owner))
        }
    }

    static func owner(_ owner: VariableOwnerID) -> VariableOwner {
        switch owner {
        case .project(let id): .project(String(id))
        case .group(let id): .group(String(id))
        }
    }

    static func scope(_ runner: RunnerCreation) throws -> RunnerScope {
        switch runner.runnerType {
        case "instance_type": return .instance
        case "group_type":
            guard let id = runner.groupID else { throw StepError("runner \(runner.description): group_type needs groupId") }
            return .group(id: id)
        default:
            guard let id = runner.projectID else { throw StepError("runner \(runner.description): project_type needs projectId") }
            return .project(id: id)
        }
    }

    static func settings(_ runner: RunnerCreation) -> GitLab.RunnerSettings {
        GitLab.RunnerSettings(description: runner.description, tags: runner.tags, runUntagged: runner.runUntagged,
                       locked: runner.locked, accessLevel: RunnerAccessLevel(rawValue: runner.accessLevel),
                       maximumTimeout: runner.maximumTimeout, paused: runner.paused,
                       maintenanceNote: runner.maintenanceNote.isEmpty ? nil : runner.maintenanceNote)
    }
}
