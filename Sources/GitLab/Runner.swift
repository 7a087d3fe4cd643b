import Foundation
import ProvisionBasics

/// Where a runner belongs (runner_type with its group_id or project_id).
public enum RunnerScope: Sendable, Equatable {
    case instance
    case group(id: Int)
    case project(id: Int)
}

public enum RunnerAccessLevel: String, Sendable, Codable, Equatable {
    case notProtected = "not_protected"
    case refProtected = "ref_protected"
}

/// What a runner is told when it is created or registered; nil leaves GitLab's default.
public struct RunnerSettings: Sendable, Equatable {
    public var description: String?
    public var tags: [String]?
    public var runUntagged: Bool?
    public var locked: Bool?
    public var accessLevel: RunnerAccessLevel?
    /// Seconds.
    public var maximumTimeout: Int?
    public var paused: Bool?
    /// At most 1024 characters.
    public var maintenanceNote: String?

    public init(description: String? = nil, tags: [String]? = nil, runUntagged: Bool? = nil, locked: Bool? = nil,
                accessLevel: RunnerAccessLevel? = nil, maximumTimeout: Int? = nil, paused: Bool? = nil,
                maintenanceNote: String? = nil) {
        self.description = description
        self.tags = tags
        self.runUntagged = runUntagged
        self.locked = locked
        self.accessLevel = accessLevel
        self.maximumTimeout = maximumTimeout
        self.paused = paused
        self.maintenanceNote = maintenanceNote
    }
}

/// A runner GitLab just made, with its authentication token (glrt-…), shown this once.
public struct CreatedRunner: Sendable, Equatable, Decodable {
    public var id: Int
    public var token: Secret
    public var tokenExpiresAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, token
        case tokenExpiresAt = "token_expires_at"
    }
}

/// What POST /runners/verify says of a runner token.
public enum RunnerVerification: Sendable, Equatable {
    /// GitLab knows the token (and has recorded the runner manager of this system id).
    case valid(id: Int?, tokenExpiresAt: Date?)
    /// 403: GitLab does not know the token (the runner was deleted, or the token is wrong).
    case invalid
    /// 422: the runner's project or group is gone.
    case orphaned
}

/// online, offline, stale, never_contacted; kept as text so a newer GitLab's value is not an error.
public struct RunnerStatus: RawRepresentable, Sendable, Hashable, Codable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let online = RunnerStatus(rawValue: "online")
    public static let offline = RunnerStatus(rawValue: "offline")
    public static let stale = RunnerStatus(rawValue: "stale")
    public static let neverContacted = RunnerStatus(rawValue: "never_contacted")
}

/// instance_type, group_type, project_type.
public struct RunnerType: RawRepresentable, Sendable, Hashable, Codable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let instance = RunnerType(rawValue: "instance_type")
    public static let group = RunnerType(rawValue: "group_type")
    public static let project = RunnerType(rawValue: "project_type")
}

/// A runner as GitLab lists it; the detail call (`runner(id:)`) also fills the fields below `ipAddress`.
public struct Runner: Sendable, Equatable, Decodable {
    public var id: Int
    public var description: String?
    public var name: String?
    public var runnerType: RunnerType?
    public var status: RunnerStatus?
    public var online: Bool?
    public var paused: Bool?
    public var isShared: Bool?
    public var ipAddress: String?
    public var tags: [String]?
    /// Nil while the runner has never talked to GitLab.
    public var contactedAt: Date?
    public var maintenanceNote: String?
    public var accessLevel: RunnerAccessLevel?
    public var maximumTimeout: Int?
    public var locked: Bool?
    public var runUntagged: Bool?

    enum CodingKeys: String, CodingKey {
        case id, description, name, status, online, paused, locked
        case runnerType = "runner_type", isShared = "is_shared", ipAddress = "ip_address", tags = "tag_list"
        case contactedAt = "contacted_at", maintenanceNote = "maintenance_note", accessLevel = "access_level"
        case maximumTimeout = "maximum_timeout", runUntagged = "run_untagged"
    }
}

/// Which runners a list call returns.
public enum RunnerListScope: Sendable, Equatable {
    /// GET /runners: those the token's user can manage.
    case owned
    /// GET /runners/all: every runner (administrators only).
    case all
    /// GET /groups/:id/runners; the id or full path.
    case group(String)
    /// GET /projects/:id/runners; the id or full path.
    case project(String)
}

public struct RunnerFilter: Sendable, Equatable {
    public var type: RunnerType?
    public var status: RunnerStatus?
    public var paused: Bool?
    /// Runners that have all these tags.
    public var tags: [String]?

    public init(type: RunnerType? = nil, status: RunnerStatus? = nil, paused: Bool? = nil, tags: [String]? = nil) {
        self.type = type
        self.status = status
        self.paused = paused
        self.tags = tags
    }
}

/// The body of POST /user/runners and POST /runners (which carries the registration token instead of a scope).
struct RunnerCreation: Encodable {
    var runnerType: String?
    var groupID: Int?
    var projectID: Int?
    var registrationToken: Secret?
    var settings: RunnerSettings

    enum CodingKeys: String, CodingKey {
        case runnerType = "runner_type", groupID = "group_id", projectID = "project_id", token
        case description, tagList = "tag_list", runUntagged = "run_untagged", locked, accessLevel = "access_level"
        case maximumTimeout = "maximum_timeout", paused, maintenanceNote = "maintenance_note"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(runnerType, forKey: .runnerType)
        try container.encodeIfPresent(groupID, forKey: .groupID)
        try container.encodeIfPresent(projectID, forKey: .projectID)
        try container.encodeIfPresent(registrationToken, forKey: .token)
        try container.encodeIfPresent(settings.description, forKey: .description)
        try container.encodeIfPresent(settings.tags, forKey: .tagList)
        try container.encodeIfPresent(settings.runUntagged, forKey: .runUntagged)
        try container.encodeIfPresent(settings.locked, forKey: .locked)
        try container.encodeIfPresent(settings.accessLevel, forKey: .accessLevel)
        try container.encodeIfPresent(settings.maximumTimeout, forKey: .maximumTimeout)
        try container.encodeIfPresent(settings.paused, forKey: .paused)
        try container.encodeIfPresent(settings.maintenanceNote, forKey: .maintenanceNote)
    }
}
