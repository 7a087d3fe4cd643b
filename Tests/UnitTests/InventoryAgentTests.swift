import Testing
@testable import Inventory

@Suite("Inventory: gitlab.agent")
struct InventoryAgentTests {
    static let environment = ["HOME": "/home/op", "GITLAB_TOKEN": "glpat-secret"]

    func yaml(_ agent: String, account: String? = "{projectId: 200}",
              k3s: String? = "k3s: {version: v1.32.5+k3s1}", token: Bool = true) -> String {
        """
        \(k3s ?? "")
        gitlab:
          url: https://gitlab.example.com
        \(token ? "  token: ${env:GITLAB_TOKEN}\n" : "")  agent: \(agent)
        \(account.map { "  serviceAccount: \($0)\n" } ?? "")hosts:
          - {name: s1, address: 192.168.1.10, roles: [server]}
        """
    }

    @Test("the agent lives on the service account's project, its token in GITLAB_AGENT_TOKEN, written before or after")
    func defaults() throws {
        let inventory = try InventoryFixtures.parse(yaml("{name: lab}"), environment: Self.environment)
        #expect(inventory.gitlab?.agent == AgentSettings(name: "lab", projectId: 200))
        #expect(inventory.gitlab?.agent?.variableKey == "GITLAB_AGENT_TOKEN" && inventory.gitlab?.agent?.environmentScope == "*")
    }

    @Test("every key is read; an explicit projectId needs no service account")
    func everyKey() throws {
        let inventory = try InventoryFixtures.parse(
            yaml("{name: lab-agent, projectId: 300, variableKey: AGENT_TOKEN, environmentScope: production}", account: nil),
            environment: Self.environment)
        #expect(inventory.gitlab?.agent == AgentSettings(name: "lab-agent", projectId: 300, variableKey: "AGENT_TOKEN",
                                                         environmentScope: "production"))
        let own = try InventoryFixtures.parse(yaml("{name: lab, projectId: 300}", account: "{groupId: 100}"),
                                              environment: Self.environment)
        #expect(own.gitlab?.agent?.projectId == 300)
    }

    @Test("mistakes name their place and what to do")
    func mistakes() {
        #expect(InventoryFixtures.problems(yaml("{name: lab}", account: nil), environment: Self.environment)
            == ["/srv/inventory.yaml:5:10: agent needs projectId, the project it is registered in (there is no serviceAccount to take it from)"])
        #expect(InventoryFixtures.problems(yaml("{name: lab}", account: "{groupId: 100}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:10: agent needs projectId, the project it is registered in (serviceAccount names a group, and an agent belongs to a project)"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:10: agent is missing required key 'name'"])
        #expect(InventoryFixtures.problems(yaml("{name: Lab_Agent}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:17: agent name 'Lab_Agent' is invalid: GitLab takes at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"])
        #expect(InventoryFixtures.problems(yaml("{name: lab, variableKey: KUBECONFIG}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:35: agent's variableKey KUBECONFIG is the variable serviceAccount writes its kubeconfig to: choose another, such as GITLAB_AGENT_TOKEN"])
        #expect(InventoryFixtures.problems(yaml("{name: lab, variableKey: AGENT-TOKEN}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:35: variableKey 'AGENT-TOKEN' is invalid: GitLab takes at most 255 letters, digits and '_'"])
        #expect(InventoryFixtures.problems(yaml("{name: lab, projectId: 300}", account: nil, k3s: nil),
                                           environment: Self.environment)
            == ["/srv/inventory.yaml:5:3: agent is the GitLab agent for a k3s cluster, but the inventory has no k3s block: add one, or remove agent"])
        #expect(InventoryFixtures.problems(yaml("{name: lab, projectId: 300}", account: nil, token: false),
                                           environment: Self.environment)
            == ["/srv/inventory.yaml:4:3: agent is registered through GitLab's API: gitlab needs token, an access token with the api scope (Maintainer of the project)"])
        #expect(InventoryFixtures.problems(yaml("{name: lab, project: 300}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:22: unknown key 'project' in agent; did you mean 'projectId'?"])
    }
}
