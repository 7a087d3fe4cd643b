import Foundation
import ProvisionBasics

/// Whose CI/CD variables: a project or a group, by numeric id or full path ("group/project").
public enum VariableOwner: Sendable, Equatable {
    case project(String)
    case group(String)

    var path: String {
        switch self {
        case .project(let id): "/projects/\(GitLabEndpoint.segment(id))/variables"
        case .group(let id): "/groups/\(GitLabEndpoint.segment(id))/variables"
        }
    }

    /// Who may read and change them, for a 403.
    var role: String {
        switch self {
        case .project(let id): "the Maintainer role on project \(id)"
        case .group(let id): "the Owner role on group \(id)"
        }
    }
}

public enum VariableType: String, Sendable, Codable, Equatable {
    case envVariable = "env_var"
    /// The job sees a path to a file holding the value (a kubeconfig, say).
    case file
}

/// A CI/CD variable. The value is a secret: it prints as [REDACTED].
public struct CIVariable: Sendable, Equatable, Codable {
    public var key: String
    public var value: Secret
    public var variableType: VariableType
    public var protected: Bool
    public var masked: Bool
    /// Not expanded ($ stays $).
    public var raw: Bool
    /// "*" for every environment. Group variables have it only on Premium and up.
    public var environmentScope: String
    public var description: String?
    /// GitLab (17.4+) does not return the value of a hidden variable: `value` is then empty.
    public var hidden: Bool

    public init(key: String, value: Secret, variableType: VariableType = .envVariable, protected: Bool = false,
                masked: Bool = false, raw: Bool = false, environmentScope: String = "*", description: String? = nil) {
        self.key = key
        self.value = value
        self.variableType = variableType
        self.protected = protected
        self.masked = masked
        self.raw = raw
        self.environmentScope = environmentScope
        self.description = description
        self.hidden = false
    }

    enum CodingKeys: String, CodingKey {
        case key, value, protected, masked, raw, description, hidden
        case variableType = "variable_type", environmentScope = "environment_scope"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        key = try container.decode(String.self, forKey: .key)
        value = try container.decodeIfPresent(Secret.self, forKey: .value) ?? Secret("")
        variableType = try container.decodeIfPresent(VariableType.self, forKey: .variableType) ?? .envVariable
        protected = try container.decodeIfPresent(Bool.self, forKey: .protected) ?? false
        masked = try container.decodeIfPresent(Bool.self, forKey: .masked) ?? false
        raw = try container.decodeIfPresent(Bool.self, forKey: .raw) ?? false
        environmentScope = try container.decodeIfPresent(String.self, forKey: .environmentScope) ?? "*"
        description = try container.decodeIfPresent(String.self, forKey: .description)
        hidden = try container.decodeIfPresent(Bool.self, forKey: .hidden) ?? false
    }

    /// The body of a create; an update leaves out the key and the scope, which it selects by.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(value, forKey: .value)
        try container.encode(variableType, forKey: .variableType)
        try container.encode(protected, forKey: .protected)
        try container.encode(masked, forKey: .masked)
        try container.encode(raw, forKey: .raw)
        try container.encode(environmentScope, forKey: .environmentScope)
        try container.encodeIfPresent(description, forKey: .description)
    }
}

/// The body of PUT …/variables/:key: what may change, not the key or the scope.
struct VariableUpdate: Encodable {
    var variable: CIVariable

    enum CodingKeys: String, CodingKey {
        case value, protected, masked, raw, description
        case variableType = "variable_type"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(variable.value, forKey: .value)
        try container.encode(variable.variableType, forKey: .variableType)
        try container.encode(variable.protected, forKey: .protected)
        try container.encode(variable.masked, forKey: .masked)
        try container.encode(variable.raw, forKey: .raw)
        try container.encodeIfPresent(variable.description, forKey: .description)
    }
}
