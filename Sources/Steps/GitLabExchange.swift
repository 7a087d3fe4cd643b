/// What steps may ask GitLab before deciding, and ask it to do. Steps stay pure: the engine sends these through
/// its GitLab client and hands the answers back in `StepContext.gitlab`, as it hands back the host's probe output.
public enum GitLabQuery: Hashable, Sendable {
    /// POST /api/v4/runners/verify with a runner's own token (it is sent in the body, never in a URL).
    case verifyRunner(token: String, systemID: String)
    /// GET /api/v4/runners/:id with the inventory's access token.
    case runner(id: Int)
}

public enum GitLabAnswer: Sendable, Equatable {
    /// The token still authenticates runner `id`.
    case valid(id: Int)
    /// GitLab does not know the token any more (403): the runner was deleted.
    case invalid
    /// The runner's `status` (online, offline, stale, never_contacted, paused).
    case runner(status: String)
    /// GitLab could not answer (unreachable, 5xx after retries, 401...): the message says why.
    case failed(String)
}

/// A runner to create in GitLab (POST /api/v4/user/runners), settings that live in GitLab rather than config.toml.
public struct RunnerCreation: Sendable, Equatable {
    public var runnerType: String
    public var projectID: Int?
    public var groupID: Int?
    public var description: String
    public var tags: [String]
    public var runUntagged: Bool
    public var locked: Bool
    public var accessLevel: String
    public var maximumTimeout: Int?
    public var paused: Bool
    public var maintenanceNote: String

    public init(runnerType: String, projectID: Int? = nil, groupID: Int? = nil, description: String, tags: [String] = [],
                runUntagged: Bool = true, locked: Bool = false, accessLevel: String = "not_protected",
                maximumTimeout: Int? = nil, paused: Bool = false, maintenanceNote: String = "") {
        self.runnerType = runnerType
        self.projectID = projectID
        self.groupID = groupID
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

/// Changes in GitLab. Results a later decision needs (a new runner's id and token) come back as shared values
/// under `sharedKey` ("<id> <token>"), treated as secrets like every shared value.
public enum GitLabRequest: Sendable, Equatable {
    /// With the inventory's access token (create_runner scope).
    case createRunner(RunnerCreation, sharedKey: String)
    /// With a legacy registration token (POST /api/v4/runners).
    case registerRunner(RunnerCreation, sharedKey: String)
    /// DELETE /api/v4/runners with the runner's own token: the runner is gone from GitLab.
    case deleteRunner(token: String, description: String)

    /// For plan and -v: never a token.
    public var summary: String {
        switch self {
        case .createRunner(let runner, _): "create runner \(runner.description) in GitLab (\(runner.runnerType), tags \(runner.tags.joined(separator: ",")))"
        case .registerRunner(let runner, _): "register runner \(runner.description) with the registration token (deprecated)"
        case .deleteRunner(_, let description): "delete runner \(description) in GitLab"
        }
    }
}
