import Facts
import Inventory
import ProvisionBasics

/// The GitLab agent for Kubernetes named in `gitlab.agent`, registered in its project through the cluster_agents
/// API, and one of its tokens in a masked, protected CI/CD variable of that project (default GITLAB_AGENT_TOKEN), for
/// whoever installs agentk. GitLab shows a token only when it is made, so the variable's description records the
/// token's id: while that token is still active for the agent, nothing changes. Otherwise a new token is made
/// (revoking the oldest first when the agent has its two active tokens) and written to the variable by the engine's
/// GitLab client, so its value never reaches a step, a summary or the journal.
public struct GitLabAgentStep: Step {
    public static let tokenName = "provision"

    public let id = "gitlab-agent"
    public let summary = "the GitLab agent for Kubernetes and its token as a masked CI/CD variable in GitLab"
    public let dependsOn = ["k3s-ready"]
    public let agent: AgentSettings

    public init(agent: AgentSettings) {
        self.agent = agent
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) }

    public func probe(for host: InventoryHost) -> String { "true" }

    var agentQuery: GitLabQuery { .clusterAgent(project: agent.projectId, name: agent.name) }

    var variableQuery: GitLabQuery {
        .variable(owner: .project(agent.projectId), key: agent.variableKey, environmentScope: agent.environmentScope)
    }

    public func gitlabQueries(_ context: StepContext) -> [GitLabQuery] {
        context.inventory.firstServer?.name == context.host.name ? [agentQuery, variableQuery] : []
    }

    /// The variable's flags: masked (a job log never shows the token), protected, raw, env_var.
    static func wanted(value: String, note: String?) -> VariableState {
        VariableState(value: value, variableType: "env_var", protected: true, masked: true, raw: true,
                      note: note)
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard context.inventory.firstServer?.name == context.host.name else { return .ok("registered from the first server") }
        let agentName = "GitLab agent \(agent.name) of project \(agent.projectId)"
        let variableName = "CI/CD variable \(agent.variableKey) of project \(agent.projectId) (environment scope \(agent.environmentScope))"
        let found: AgentState
        switch context.gitlab[agentQuery] {
        case .clusterAgent(nil)?:
            return .change(reason: "\(agentName) is not registered; its token then goes to \(variableName)",
                           actions: [.gitlab(.createClusterAgent(project: agent.projectId, name: agent.name))])
        case .clusterAgent(let state?)?: found = state
        case .failed(let message)?: throw StepError("cannot read \(agentName) from GitLab: \(message)")
        default: throw StepError("GitLab gave no answer about \(agentName)")
        }
        let current: VariableState?
        switch context.gitlab[variableQuery] {
        case .variable(let state)?: current = state
        case .failed(let message)?: throw StepError("cannot read \(variableName) from GitLab: \(message)")
        default: throw StepError("GitLab gave no answer about \(variableName)")
        }
        let activeIDs = found.activeTokens.map(\.id)
        if let current, let tokenID = AgentTokenPublication.tokenID(inVariableDescription: current.note,
                                                                    agentName: agent.name),
           activeIDs.contains(tokenID) {
            let wanted = Self.wanted(value: current.value, note: current.note)
            guard current == wanted else {
                // The token is still good: only the flags are put right, with the value GitLab gave back.
                let write = VariableWrite(owner: .project(agent.projectId), key: agent.variableKey,
                                          environmentScope: agent.environmentScope, state: wanted)
                return .change(reason: "\(variableName) holds token \(tokenID) of \(agentName), but it is not \(wanted)",
                               actions: [.gitlab(.putVariable(write, create: false))])
            }
            return .ok("\(variableName) holds token \(tokenID), active, of \(agentName)")
        }
        let why: String
        if current == nil {
            why = "\(variableName) is missing"
        } else if let tokenID = AgentTokenPublication.tokenID(inVariableDescription: current?.note, agentName: agent.name) {
            why = "\(variableName) holds token \(tokenID) of \(agentName), which is no longer active"
        } else {
            why = "\(variableName) does not say which token of \(agentName) it holds"
        }
        var actions: [Action] = []
        // GitLab refuses a third active token: the oldest goes, the newer one (which agentk may use) stays.
        if found.activeTokens.count >= 2, let oldest = found.activeTokens.first {
            actions.append(.gitlab(.revokeAgentToken(project: agent.projectId, agentID: found.id, tokenID: oldest.id,
                                                     agentName: agent.name)))
        }
        let write = VariableWrite(owner: .project(agent.projectId), key: agent.variableKey,
                                  environmentScope: agent.environmentScope, state: Self.wanted(value: "", note: nil))
        actions.append(.gitlab(.publishAgentToken(AgentTokenPublication(
            project: agent.projectId, agentID: found.id, agentName: agent.name, tokenName: Self.tokenName,
            tokenDescription: "made by provision for CI/CD variable \(agent.variableKey)",
            variable: write, createVariable: current == nil))))
        return .change(reason: why, actions: actions)
    }

    public func desiredState(_ context: StepContext) -> String {
        [id, agent.name, String(agent.projectId), agent.variableKey, agent.environmentScope].joined(separator: "|")
    }
}
