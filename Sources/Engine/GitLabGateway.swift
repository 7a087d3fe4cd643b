import Steps

/// The engine's way to GitLab: answers steps' queries and carries out their GitLab actions. The command layer
/// builds one from the inventory's `gitlab:` block; tests may give another.
public protocol GitLabGateway: Sendable {
    func answer(_ query: GitLabQuery) async -> GitLabAnswer
    /// Carries out `request`; what it returns is shared with later decisions (as secrets).
    func perform(_ request: GitLabRequest) async throws -> [String: String]
}
