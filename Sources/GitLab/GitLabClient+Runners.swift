import Foundation
import ProvisionBasics

/// Runners: create (access token), register (legacy registration token), verify, unregister, read.
extension GitLabClient {
    /// POST /user/runners: a new runner and its authentication token. Needs the `create_runner` scope; an
    /// administrator for instance runners, Owner of the group, Maintainer of the project. Never sent twice.
    public func createRunner(_ scope: RunnerScope, settings: RunnerSettings) async throws -> CreatedRunner {
        var body = RunnerCreation(settings: settings)
        let role: String
        switch scope {
        case .instance:
            body.runnerType = "instance_type"
            role = "an administrator (instance runners)"
        case .group(let id):
            body.runnerType = "group_type"
            body.groupID = id
            role = "the Owner role on group \(id)"
        case .project(let id):
            body.runnerType = "project_type"
            body.projectID = id
            role = "the Maintainer role on project \(id)"
        }
        var endpoint = GitLabEndpoint(method: .post, path: "/user/runners", credential: .accessToken(scope: "create_runner"),
                                      role: role, creates: "a runner")
        endpoint.body = try json(body, for: endpoint.shown)
        return try await created(endpoint)
    }

    /// POST /runners with a registration token (the workflow GitLab disabled by default in 17.0). Never sent twice.
    public func registerLegacy(registrationToken: Secret, settings: RunnerSettings) async throws -> CreatedRunner {
        redactor.learn(registrationToken.revealed)
        var endpoint = GitLabEndpoint(method: .post, path: "/runners", credential: .registrationToken, creates: "a runner")
        endpoint.body = try json(RunnerCreation(registrationToken: registrationToken, settings: settings),
                                 for: endpoint.shown)
        return try await created(endpoint)
    }

    private func created(_ endpoint: GitLabEndpoint) async throws -> CreatedRunner {
        let response = try await send(endpoint)
        let runner = try decode(CreatedRunner.self, from: response, of: endpoint)
        redactor.learn(runner.token.revealed)
        return runner
    }

    /// POST /runners/verify: whether GitLab knows this runner token. `systemID` is required for glrt- tokens; the
    /// first verified call with it creates the runner-manager record.
    public func verifyRunner(token: Secret, systemID: String?) async throws -> RunnerVerification {
        redactor.learn(token.revealed)
        struct Verify: Encodable {
            var token: Secret
            var systemID: String?
            enum CodingKeys: String, CodingKey { case token, systemID = "system_id" }
        }
        var endpoint = GitLabEndpoint(method: .post, path: "/runners/verify", credential: .runnerToken)
        endpoint.body = try json(Verify(token: token, systemID: systemID), for: endpoint.shown)
        let response = try await send(endpoint, accepting: [403, 422])
        switch response.status {
        case 403: return .invalid
        case 422: return .orphaned
        default:
            struct Verified: Decodable {
                var id: Int?
                var tokenExpiresAt: Date?
                enum CodingKeys: String, CodingKey { case id, tokenExpiresAt = "token_expires_at" }
            }
            let verified = response.body.isEmpty ? Verified() : try decode(Verified.self, from: response, of: endpoint)
            return .valid(id: verified.id, tokenExpiresAt: verified.tokenExpiresAt)
        }
    }

    /// DELETE /runners with the runner's own token: true when deleted, false when GitLab does not know the token
    /// (403: already deleted, or the token is wrong).
    @discardableResult
    public func deleteRunner(byToken token: Secret) async throws -> Bool {
        redactor.learn(token.revealed)
        var endpoint = GitLabEndpoint(method: .delete, path: "/runners", credential: .runnerToken)
        endpoint.body = .form([("token", token.revealed)])
        return try await send(endpoint, accepting: [403]).status != 403
    }

    /// DELETE /runners/managers: forgets one system's manager of the runner, keeps the runner. False on 403.
    @discardableResult
    public func deleteRunnerManager(token: Secret, systemID: String) async throws -> Bool {
        redactor.learn(token.revealed)
        var endpoint = GitLabEndpoint(method: .delete, path: "/runners/managers", credential: .runnerToken)
        endpoint.body = .form([("token", token.revealed), ("system_id", systemID)])
        return try await send(endpoint, accepting: [403]).status != 403
    }

    /// DELETE /runners/:id with the client's token (`manage_runner` scope): true when deleted, false when GitLab
    /// has no such runner (404).
    @discardableResult
    public func deleteRunner(id: Int) async throws -> Bool {
        let endpoint = GitLabEndpoint(method: .delete, path: "/runners/\(id)", credential: .accessToken(scope: "manage_runner"),
                                      role: Self.runnerRole)
        return try await send(endpoint, accepting: [404]).status != 404
    }

    /// PUT /runners/:id: the settings GitLab keeps for a runner (tags, run_untagged, paused, locked, access level,
    /// maximum timeout, description, maintenance note); the runner and its token stay. Needs `manage_runner`.
    public func updateRunner(id: Int, settings: RunnerSettings) async throws -> Runner {
        var endpoint = GitLabEndpoint(method: .put, path: "/runners/\(id)", credential: .accessToken(scope: "manage_runner"),
                                      role: Self.runnerRole)
        endpoint.body = try json(RunnerCreation(settings: settings), for: endpoint.shown)
        return try decode(Runner.self, from: try await send(endpoint), of: endpoint)
    }

    /// GET /runners/:id: status, online, tags, description, contacted_at…
    public func runner(id: Int) async throws -> Runner {
        let endpoint = GitLabEndpoint(method: .get, path: "/runners/\(id)", credential: .accessToken(scope: "read_api"),
                                      role: Self.runnerRole)
        return try decode(Runner.self, from: try await send(endpoint), of: endpoint)
    }

    /// Every runner of `scope` that passes `filter`, all pages.
    public func listRunners(_ scope: RunnerListScope = .owned, filter: RunnerFilter = RunnerFilter()) async throws -> [Runner] {
        let path: String, role: String
        switch scope {
        case .owned: (path, role) = ("/runners", Self.runnerRole)
        case .all: (path, role) = ("/runners/all", "an administrator")
        case .group(let group): (path, role) = ("/groups/\(GitLabEndpoint.segment(group))/runners", "the Owner role on group \(group)")
        case .project(let project):
            (path, role) = ("/projects/\(GitLabEndpoint.segment(project))/runners", "the Maintainer role on project \(project)")
        }
        var endpoint = GitLabEndpoint(method: .get, path: path, credential: .accessToken(scope: "read_api"), role: role)
        if let type = filter.type { endpoint.query.append(("type", type.rawValue)) }
        if let status = filter.status { endpoint.query.append(("status", status.rawValue)) }
        if let paused = filter.paused { endpoint.query.append(("paused", String(paused))) }
        if let tags = filter.tags, !tags.isEmpty { endpoint.query.append(("tag_list", tags.joined(separator: ","))) }
        return try await allPages(endpoint, of: Runner.self)
    }

    static let runnerRole = "an administrator, or the Owner role on the runner's group or the Maintainer role on its project"
}
