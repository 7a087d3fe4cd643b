import Foundation
import LabSupport
import Testing

/// `gitlab.agent`: the GitLab agent for Kubernetes registered in the fake GitLab's project 200, one of its tokens in
/// a masked, protected variable; a second apply makes nothing, a deleted variable gets one new token.
@Suite(.serialized) struct AgentTests {
    /// The 1-host k3s cluster's inventory with the service account and the agent on its project.
    func inventory(_ lab: Lab) throws -> (K3sCluster, [String: String]) {
        let cluster = try K3sCluster(lab)
        let environment = try cluster.addGitLab("  agent: {name: lab}\n  serviceAccount: {projectId: 200}\n")
        return (cluster, environment)
    }

    func counts(_ lab: Lab) throws -> [String: Int] {
        (try lab.gitlabState()["counts"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
    }

    /// The variable as the fake has it, with its value.
    func tokenVariable(_ lab: Lab) throws -> [String: Any]? {
        (try lab.gitlabState(secrets: true)["variables"] as? [[String: Any]] ?? [])
            .first { $0["key"] as? String == "GITLAB_AGENT_TOKEN" }
    }

    /// The agent's tokens (id, status, value), oldest first.
    func tokens(_ lab: Lab) throws -> [(id: Int, status: String, token: String)] {
        let agents = try lab.gitlabState(secrets: true)["agents"] as? [[String: Any]] ?? []
        return (agents.first?["tokens"] as? [[String: Any]] ?? []).compactMap { token in
            guard let id = token["id"] as? Int, let status = token["status"] as? String,
                  let value = token["token"] as? String else { return nil }
            return (id, status, value)
        }
    }

    /// Calls that change agents or variables, from the fake's log.
    func writes(_ lab: Lab) throws -> [String] {
        try lab.gitlabLog().compactMap { entry in
            guard let method = entry["method"] as? String, method != "GET",
                  let path = entry["path"] as? String, path.contains("/cluster_agents") || path.contains("/variables") else { return nil }
            return "\(method) \(path)"
        }
    }

    /// Neither provision's output nor any file of its journal holds `secret`.
    func expectNowhere(_ secret: String, in outputs: [ProcessOutput], _ lab: Lab) throws {
        for output in outputs {
            #expect(!output.stdout.contains(secret) && !output.stderr.contains(secret))
        }
        let journal = lab.directory + "/.provision"
        for file in try FileManager.default.contentsOfDirectory(atPath: journal) {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: journal + "/" + file))
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file)")
        }
    }

    @Test func theAgentIsRegisteredOnceAndADeletedVariableGetsOneNewToken() async throws {
        try await withLab(hosts: 1) { lab in
            let (cluster, environment) = try inventory(lab)
            let first = try run(Repo.provisionBinary, ["apply", cluster.inventory, "-v"], environment: environment)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(try counts(lab)["agents"] == 1 && counts(lab)["agent_tokens"] == 1)
            let variable = try #require(try tokenVariable(lab))
            #expect(variable["owner"] as? String == "project" && variable["owner_id"] as? Int == 200)
            #expect(variable["variable_type"] as? String == "env_var" && variable["masked"] as? Bool == true)
            #expect(variable["protected"] as? Bool == true && variable["environment_scope"] as? String == "*")
            let token = try #require(try tokens(lab).first)
            #expect(token.status == "active" && token.token.hasPrefix("glagent-"))
            #expect(variable["value"] as? String == token.token)
            #expect(variable["description"] as? String == "token \(token.id) of GitLab agent lab (kept by provision)")
            try expectNowhere(token.token, in: [first], lab)

            // A second apply registers nothing and writes nothing.
            let written = try writes(lab)
            let agentID = try #require((try lab.gitlabState()["agents"] as? [[String: Any]])?.first?["id"] as? Int)
            #expect(written == ["POST /api/v4/projects/200/variables", "POST /api/v4/projects/200/cluster_agents",
                                "POST /api/v4/projects/200/cluster_agents/\(agentID)/tokens",
                                "POST /api/v4/projects/200/variables"], "the kubeconfig, then the agent, its token, its variable")
            let second = try run(Repo.provisionBinary, ["apply", cluster.inventory], environment: environment)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(try writes(lab) == written)
            #expect(try counts(lab)["agents"] == 1 && counts(lab)["agent_tokens"] == 1)
            #expect(try tokenVariable(lab)?["value"] as? String == token.token)
            let verify = try run(Repo.provisionBinary, ["verify", cluster.inventory], environment: environment)
            #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

            // The variable deleted in GitLab: one new token, in a new variable; the agent stays the same one.
            #expect(try lab.gitlabAPI("DELETE", "/projects/200/variables/GITLAB_AGENT_TOKEN", token: "project-bot").status == 204)
            let third = try run(Repo.provisionBinary, ["apply", cluster.inventory], environment: environment)
            #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
            #expect(third.stderr.contains("gitlab-agent: changing: CI/CD variable GITLAB_AGENT_TOKEN of project 200 (environment scope *) is missing"),
                    "\(third.stderr)")
            #expect(try counts(lab)["agents"] == 1 && counts(lab)["agent_tokens"] == 2 && counts(lab)["agent_tokens_active"] == 2)
            let newer = try #require(try tokens(lab).last)
            #expect(newer.id != token.id && newer.status == "active")
            #expect(try tokenVariable(lab)?["value"] as? String == newer.token)
            try expectNowhere(newer.token, in: [third], lab)

            // Once more with two active tokens: the older one is revoked before the third is made.
            #expect(try lab.gitlabAPI("DELETE", "/projects/200/variables/GITLAB_AGENT_TOKEN", token: "project-bot").status == 204)
            let fourth = try run(Repo.provisionBinary, ["apply", cluster.inventory], environment: environment)
            #expect(fourth.status == 0, "\(fourth.stdout)\(fourth.stderr)")
            #expect(try counts(lab)["agent_tokens"] == 3 && counts(lab)["agent_tokens_active"] == 2)
            #expect(try tokens(lab).map { $0.status } == ["revoked", "active", "active"])
            #expect(try tokenVariable(lab)?["value"] as? String == tokens(lab).last?.token)
        }
    }
}
