import Foundation
import ProvisionBasics

/// Agents for Kubernetes (Maintainer of the project; `read_api` to read, `api` to change), and the project and
/// group lookups that turn a path into the numeric id runner creation needs.
extension GitLabClient {
    public func clusterAgents(project: String) async throws -> [ClusterAgent] {
        let endpoint = GitLabEndpoint(method: .get, path: Self.agentsPath(project), credential: .accessToken(scope: "read_api"),
                                      role: Self.agentRole(project))
        return try await allPages(endpoint, of: ClusterAgent.self)
    }

    /// POST: registers an agent. Never sent twice.
    public func createClusterAgent(named name: String, project: String) async throws -> ClusterAgent {
        struct Body: Encodable { var name: String }
        var endpoint = GitLabEndpoint(method: .post, path: Self.agentsPath(project), credential: .accessToken(scope: "api"),
                                      role: Self.agentRole(project), creates: "the agent \(name)")
        endpoint.body = try json(Body(name: name), for: endpoint.shown)
        return try decode(ClusterAgent.self, from: try await send(endpoint), of: endpoint)
    }

    public func clusterAgentTokens(agentID: Int, project: String) async throws -> [ClusterAgentToken] {
        let endpoint = GitLabEndpoint(method: .get, path: Self.agentsPath(project) + "/\(agentID)/tokens",
                                      credential: .accessToken(scope: "read_api"), role: Self.agentRole(project))
        return try await allPages(endpoint, of: ClusterAgentToken.self)
    }

    /// POST: a new token for the agent (an agent has at most two active ones). Never sent twice.
    public func createClusterAgentToken(agentID: Int, project: String, name: String,
                                        description: String? = nil) async throws -> ClusterAgentToken {
        struct Body: Encodable {
            var name: String
            var description: String?
        }
        var endpoint = GitLabEndpoint(method: .post, path: Self.agentsPath(project) + "/\(agentID)/tokens",
                                      credential: .accessToken(scope: "api"), role: Self.agentRole(project),
                                      creates: "the agent token \(name)")
        endpoint.body = try json(Body(name: name, description: description), for: endpoint.shown)
        let token = try decode(ClusterAgentToken.self, from: try await send(endpoint), of: endpoint)
        guard let secret = token.token, !secret.isEmpty else {
            throw GitLabError(.invalidResponse, endpoint: endpoint.shown,
                              message: "GitLab's answer to \(endpoint.shown) holds no token")
        }
        redactor.learn(secret.revealed)
        return token
    }

    /// DELETE: revokes a token; false when there was no such token.
    @discardableResult
    public func revokeClusterAgentToken(id: Int, agentID: Int, project: String) async throws -> Bool {
        let endpoint = GitLabEndpoint(method: .delete, path: Self.agentsPath(project) + "/\(agentID)/tokens/\(id)",
                                      credential: .accessToken(scope: "api"), role: Self.agentRole(project))
        return try await send(endpoint, accepting: [404]).status != 404
    }

    /// GET /projects/:id: the project by id or full path.
    public func project(_ idOrPath: String) async throws -> ProjectReference {
        let endpoint = GitLabEndpoint(method: .get, path: "/projects/\(GitLabEndpoint.segment(idOrPath))",
                                      credential: .accessToken(scope: "read_api"))
        return try decode(ProjectReference.self, from: try await send(endpoint), of: endpoint)
    }

    /// GET /groups/:id: the group by id or full path (without its projects).
    public func group(_ idOrPath: String) async throws -> GroupReference {
        let endpoint = GitLabEndpoint(method: .get, path: "/groups/\(GitLabEndpoint.segment(idOrPath))",
                                      query: [("with_projects", "false")], credential: .accessToken(scope: "read_api"))
        return try decode(GroupReference.self, from: try await send(endpoint), of: endpoint)
    }

    private static func agentsPath(_ project: String) -> String {
        "/projects/\(GitLabEndpoint.segment(project))/cluster_agents"
    }

    private static func agentRole(_ project: String) -> String { "the Maintainer role on project \(project)" }
}
