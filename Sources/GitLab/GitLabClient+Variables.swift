import Foundation
import ProvisionBasics

/// Project and group CI/CD variables. Reading needs `read_api`, changing needs `api`. Values are not taught to the
/// redactor (many are plain words such as "default"); the client never logs them.
extension GitLabClient {
    /// Every variable of `owner`, all pages.
    public func variables(of owner: VariableOwner) async throws -> [CIVariable] {
        let endpoint = GitLabEndpoint(method: .get, path: owner.path, credential: .accessToken(scope: "read_api"),
                                      role: owner.role)
        return try await allPages(endpoint, of: CIVariable.self)
    }

    /// One variable, or nil when `owner` has none of that key (in that environment scope, when one is given).
    public func variable(_ key: String, of owner: VariableOwner, environmentScope: String? = nil) async throws -> CIVariable? {
        var endpoint = GitLabEndpoint(method: .get, path: owner.path + "/" + GitLabEndpoint.segment(key),
                                      credential: .accessToken(scope: "read_api"), role: owner.role)
        if let environmentScope { endpoint.query = [("filter[environment_scope]", environmentScope)] }
        let response = try await send(endpoint, accepting: [404])
        // "404 Variable Not Found" is an answer; "404 Project Not Found" is not.
        if response.status == 404 {
            guard GitLabJSON.errorBody(response.body).text?.localizedCaseInsensitiveContains("variable") == true else {
                throw failure(response, endpoint, attempts: 1, since: .now)
            }
            return nil
        }
        return try decode(CIVariable.self, from: response, of: endpoint)
    }

    /// POST: a new variable. Never sent twice (GitLab answers 400 "has already been taken" to a second one).
    public func createVariable(_ variable: CIVariable, in owner: VariableOwner) async throws -> CIVariable {
        var endpoint = GitLabEndpoint(method: .post, path: owner.path, credential: .accessToken(scope: "api"),
                                      role: owner.role, creates: "the variable \(variable.key)")
        endpoint.body = try json(variable, for: endpoint.shown)
        return try decode(CIVariable.self, from: try await send(endpoint), of: endpoint)
    }

    /// PUT: changes the value and flags of the variable with this key and environment scope.
    public func updateVariable(_ variable: CIVariable, in owner: VariableOwner) async throws -> CIVariable {
        var endpoint = GitLabEndpoint(method: .put, path: owner.path + "/" + GitLabEndpoint.segment(variable.key),
                                      query: [("filter[environment_scope]", variable.environmentScope)],
                                      credential: .accessToken(scope: "api"), role: owner.role)
        endpoint.body = try json(VariableUpdate(variable: variable), for: endpoint.shown)
        return try decode(CIVariable.self, from: try await send(endpoint), of: endpoint)
    }

    /// DELETE: true when deleted, false when there was no such variable.
    @discardableResult
    public func deleteVariable(_ key: String, of owner: VariableOwner, environmentScope: String = "*") async throws -> Bool {
        let endpoint = GitLabEndpoint(method: .delete, path: owner.path + "/" + GitLabEndpoint.segment(key),
                                      query: [("filter[environment_scope]", environmentScope)],
                                      credential: .accessToken(scope: "api"), role: owner.role)
        return try await send(endpoint, accepting: [404]).status != 404
    }
}
