import Foundation
import ProvisionBasics

/// A GitLab agent for Kubernetes registered in a project.
public struct ClusterAgent: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String
    public var createdAt: Date?
    public var createdByUserID: Int?
    public var configProject: ProjectReference?

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at", createdByUserID = "created_by_user_id", configProject = "config_project"
    }
}

/// An agent's access token; `token` (glagent-…) is there only in the answer to its creation.
public struct ClusterAgentToken: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String
    public var description: String?
    public var agentID: Int?
    /// active or revoked.
    public var status: String?
    public var createdAt: Date?
    public var lastUsedAt: Date?
    public var token: Secret?

    enum CodingKeys: String, CodingKey {
        case id, name, description, status, token
        case agentID = "agent_id", createdAt = "created_at", lastUsedAt = "last_used_at"
    }
}

public struct ProjectReference: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String?
    public var pathWithNamespace: String?

    enum CodingKeys: String, CodingKey {
        case id, name
        case pathWithNamespace = "path_with_namespace"
    }
}

public struct GroupReference: Sendable, Equatable, Decodable {
    public var id: Int
    public var name: String?
    public var fullPath: String?

    enum CodingKeys: String, CodingKey {
        case id, name
        case fullPath = "full_path"
    }
}
