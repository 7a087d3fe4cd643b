import Facts
import Inventory
@testable import Steps
import Templates
import Testing

/// The agent step's decisions from GitLab's answers: the agent, its active tokens, the variable that keeps one.
@Suite struct GitLabAgentStepTests {
    static let token = "glagent-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"

    func inventory() throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.32.5+k3s1}
            gitlab:
              url: "https://gitlab.example.com"
              token: "${env:GT}"
              serviceAccount: {projectId: 200}
              agent: {name: lab}
            hosts:
              - {name: s1, address: 10.0.0.2, roles: [server]}
              - {name: a1, address: 10.0.0.3, roles: [agent]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root", "GT": "glpat-secret"])
    }

    static let agentQuery = GitLabQuery.clusterAgent(project: 200, name: "lab")
    static let variableQuery = GitLabQuery.variable(owner: .project(200), key: "GITLAB_AGENT_TOKEN", environmentScope: "*")

    /// The variable as the step leaves it, holding token `id`.
    static func variable(holding id: Int) -> VariableState {
        VariableState(value: token, variableType: "env_var", protected: true, masked: true, raw: true,
                      note: AgentTokenPublication.variableDescription(agentName: "lab", tokenID: id))
    }

    func decide(agent: GitLabAnswer, variable: GitLabAnswer, host: String = "s1") throws -> Decision {
        let inventory = try inventory()
        let step = try #require(StepCatalog.steps(for: inventory).first { $0.id == "gitlab-agent" } as? GitLabAgentStep)
        let context = StepContext(host: try #require(inventory.host(named: host)), inventory: inventory,
                                  facts: HostFacts(), probe: "", templates: TemplateSet(),
                                  gitlab: [Self.agentQuery: agent, Self.variableQuery: variable])
        return try step.decide(context)
    }

    @Test func itComesAfterTheKubeconfigVariableAndAsksGitLabOnlyFromTheFirstServer() throws {
        let inventory = try inventory()
        let ids = StepCatalog.steps(for: inventory).map(\.id)
        #expect(ids.suffix(2) == ["gitlab-kubeconfig-variable", "gitlab-agent"])
        let step = GitLabAgentStep(agent: try #require(inventory.gitlab?.agent))
        func queries(_ host: String) throws -> [GitLabQuery] {
            step.gitlabQueries(StepContext(host: try #require(inventory.host(named: host)), inventory: inventory,
                                           facts: HostFacts(), probe: "", templates: TemplateSet()))
        }
        #expect(try queries("s1") == [Self.agentQuery, Self.variableQuery])
        #expect(try queries("a1").isEmpty)
        #expect(try decide(agent: .failed("unused"), variable: .failed("unused"), host: "a1").actions.isEmpty)
    }

    @Test func aMissingAgentIsRegisteredFirst() throws {
        let decision = try decide(agent: .clusterAgent(nil), variable: .variable(nil))
        #expect(decision.actions == [.gitlab(.createClusterAgent(project: 200, name: "lab"))])
        #expect(decision.reason == "GitLab agent lab of project 200 is not registered; its token then goes to CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *)")
    }

    @Test func aMissingVariableGetsANewTokenAsAMaskedProtectedVariable() throws {
        let decision = try decide(agent: .clusterAgent(AgentState(id: 7, activeTokens: [])), variable: .variable(nil))
        guard case .gitlab(.publishAgentToken(let publication))? = decision.actions.first, decision.actions.count == 1 else {
            Issue.record("no token: \(decision)"); return
        }
        #expect(publication.project == 200 && publication.agentID == 7 && publication.agentName == "lab")
        #expect(publication.createVariable && publication.variable.key == "GITLAB_AGENT_TOKEN")
        let state = publication.variable.state
        #expect(state.variableType == "env_var" && state.protected && state.masked)
        #expect(decision.reason == "CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *) is missing")
        #expect(decision.actions[0].summary == "create a token for GitLab agent lab and create CI/CD variable GITLAB_AGENT_TOKEN (env_var variable (protected, masked, raw), environment scope *) of project 200 with it")
    }

    @Test func aVariableHoldingAnActiveTokenIsLeftAlone() throws {
        let agent = GitLabAnswer.clusterAgent(AgentState(id: 7, activeTokens: [AgentTokenState(id: 12, name: "provision"),
                                                                               AgentTokenState(id: 11, name: "other")]))
        let decision = try decide(agent: agent, variable: .variable(Self.variable(holding: 12)))
        #expect(decision == .ok("CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *) holds token 12, active, of GitLab agent lab of project 200"))
        // Flags put right with the value GitLab gave back: no new token.
        var unprotected = Self.variable(holding: 12)
        unprotected.protected = false
        let fix = try decide(agent: agent, variable: .variable(unprotected))
        #expect(fix.actions == [.gitlab(.putVariable(VariableWrite(owner: .project(200), key: "GITLAB_AGENT_TOKEN",
                                                                   environmentScope: "*", state: Self.variable(holding: 12)),
                                                     create: false))])
        #expect(!fix.reason.contains(Self.token) && !fix.actions[0].summary.contains(Self.token))
    }

    @Test func aRevokedTokenIsReplacedAndWithTwoActiveTheOldestIsRevokedFirst() throws {
        let one = try decide(agent: .clusterAgent(AgentState(id: 7, activeTokens: [AgentTokenState(id: 13, name: "provision")])),
                             variable: .variable(Self.variable(holding: 12)))
        #expect(one.reason == "CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *) holds token 12 of GitLab agent lab of project 200, which is no longer active")
        guard case .gitlab(.publishAgentToken(let publication))? = one.actions.first, one.actions.count == 1 else {
            Issue.record("no token: \(one)"); return
        }
        #expect(!publication.createVariable)
        let two = try decide(agent: .clusterAgent(AgentState(id: 7, activeTokens: [AgentTokenState(id: 14, name: "b"),
                                                                                    AgentTokenState(id: 13, name: "a")])),
                             variable: .variable(nil))
        #expect(two.actions.count == 2)
        #expect(two.actions.first == .gitlab(.revokeAgentToken(project: 200, agentID: 7, tokenID: 13, agentName: "lab")))
        if case .gitlab(.publishAgentToken)? = two.actions.last {} else { Issue.record("no token after the revocation: \(two)") }
        // A variable someone wrote by hand says no token id: it gets one of ours.
        var handmade = Self.variable(holding: 13)
        handmade.note = nil
        #expect(try decide(agent: .clusterAgent(AgentState(id: 7, activeTokens: [AgentTokenState(id: 13, name: "a")])),
                           variable: .variable(handmade)).reason
            == "CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *) does not say which token of GitLab agent lab of project 200 it holds")
    }

    @Test func gitLabFailuresStopTheStep() throws {
        #expect(throws: StepError.self) { try decide(agent: .failed("401 Unauthorized"), variable: .variable(nil)) }
        #expect(throws: StepError.self) {
            try decide(agent: .clusterAgent(AgentState(id: 7, activeTokens: [])), variable: .failed("403 Forbidden"))
        }
    }

    @Test func theVariableDescriptionRecordsTheTokenIdOfThatAgentOnly() {
        let text = AgentTokenPublication.variableDescription(agentName: "lab", tokenID: 42)
        #expect(AgentTokenPublication.tokenID(inVariableDescription: text, agentName: "lab") == 42)
        #expect(AgentTokenPublication.tokenID(inVariableDescription: text, agentName: "other") == nil)
        #expect(AgentTokenPublication.tokenID(inVariableDescription: "my token", agentName: "lab") == nil)
    }
}
