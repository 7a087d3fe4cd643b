/// The `gitlab` block: the GitLab the runners register with, how, and the gitlab-runner package they run.
public struct GitLabSettings: Sendable, Equatable {
    public static let defaultTimeout = 30.0

    /// `https://gitlab.example.com` (or `http://`), without a trailing `/`.
    public var url: String
    /// Absolute path of the CA certificate of a GitLab whose certificate no public CA signed.
    public var caFile: String?
    /// An access token with the `create_runner` scope (the current workflow). Listed in `Inventory.secrets`.
    public var token: String?
    /// A ready runner authentication token (`glrt-…`). Listed in `Inventory.secrets`.
    public var runnerToken: String?
    /// A legacy registration token (deprecated by GitLab). Listed in `Inventory.secrets`.
    public var registrationToken: String?
    /// Seconds allowed for each GitLab API call.
    public var timeout: Double
    /// The gitlab-runner package; required (with a version) when some host has the role `runner`.
    public var runnerPackage: RunnerPackageSettings?
    /// config.toml's `concurrent`: jobs the host runs at once, over all its runners.
    public var concurrent: Int
    /// config.toml's `check_interval` in seconds; 0 leaves gitlab-runner's default (3 s).
    public var checkInterval: Int
    /// Registered on every host with the role `runner`, in the order written.
    public var runners: [RunnerSettings]
    /// A service account in the cluster whose kubeconfig becomes a CI/CD variable; needs a k3s block.
    public var serviceAccount: ServiceAccountSettings?
    /// A GitLab agent for Kubernetes registered in a project, its token kept in a CI/CD variable; needs a k3s block.
    public var agent: AgentSettings?

    public init(url: String, caFile: String? = nil, token: String? = nil, runnerToken: String? = nil,
                registrationToken: String? = nil, timeout: Double = GitLabSettings.defaultTimeout,
                runnerPackage: RunnerPackageSettings? = nil, concurrent: Int = 1, checkInterval: Int = 0,
                runners: [RunnerSettings] = [], serviceAccount: ServiceAccountSettings? = nil,
                agent: AgentSettings? = nil) {
        self.url = url
        self.caFile = caFile
        self.token = token
        self.runnerToken = runnerToken
        self.registrationToken = registrationToken
        self.timeout = timeout
        self.runnerPackage = runnerPackage
        self.concurrent = concurrent
        self.checkInterval = checkInterval
        self.runners = runners
        self.serviceAccount = serviceAccount
        self.agent = agent
    }

    /// The runner whose `name` is `name`.
    public func runner(named name: String) -> RunnerSettings? {
        runners.first { $0.name == name }
    }

    /// Whether any runner uses the docker executor (its host's gitlab-runner user then joins the docker group).
    public var usesDocker: Bool { runners.contains { $0.executor == .docker } }
}

/// `gitlab.runnerPackage`: the pinned gitlab-runner release and the apt repository it comes from.
public struct RunnerPackageSettings: Sendable, Equatable {
    /// GitLab's runner repository; the apt suites are under `<base>/debian`, the key at `<base>/gpgkey`.
    public static let defaultAptRepository = "https://packages.gitlab.com/runner/gitlab-runner"

    /// A gitlab-runner release, `17.7.1`; the apt version installed is `17.7.1-1`.
    public var version: String?
    /// The base URL of GitLab's repository or of a mirror with its layout; nil for the default.
    public var aptRepository: String?

    public init(version: String? = nil, aptRepository: String? = nil) {
        self.version = version
        self.aptRepository = aptRepository
    }

    /// The repository gitlab-runner comes from: `aptRepository`, else GitLab's own.
    public var repository: String { aptRepository ?? Self.defaultAptRepository }
}

/// One entry of `gitlab.runners`: a runner registered on each host with the role `runner`.
public struct RunnerSettings: Sendable, Equatable {
    public enum Executor: String, Sendable, CaseIterable {
        case docker
        case shell
    }

    /// Who may use the runner, as GitLab's `runner_type` says it.
    public enum RunnerType: String, Sendable, CaseIterable {
        case projectType = "project_type"
        case groupType = "group_type"
        case instanceType = "instance_type"
    }

    /// GitLab's `access_level`: every ref, or protected branches and tags only.
    public enum AccessLevel: String, Sendable, CaseIterable {
        case notProtected = "not_protected"
        case refProtected = "ref_protected"
    }

    /// Unique in the inventory; the runner's GitLab description is `<host>-<name>`.
    public var name: String
    public var executor: Executor
    public var runnerType: RunnerType
    /// The project of a `project_type` runner.
    public var projectId: Int?
    /// The group of a `group_type` runner.
    public var groupId: Int?
    public var tags: [String]
    public var runUntagged: Bool
    public var locked: Bool
    public var accessLevel: AccessLevel
    /// Seconds; nil leaves jobs to their project's timeout.
    public var maximumTimeout: Int?
    public var paused: Bool
    /// docker executor: the default job image.
    public var image: String?
    /// docker executor: run job containers privileged (Docker-in-Docker needs it).
    public var privileged: Bool
    /// docker executor: volumes for every job container, as `docker run -v` takes them.
    public var volumes: [String]
    /// docker executor: /dev/shm size of job containers in bytes; nil leaves Docker's default.
    public var shmSize: Int?

    public init(name: String, executor: Executor = .docker, runnerType: RunnerType = .instanceType,
                projectId: Int? = nil, groupId: Int? = nil, tags: [String] = [], runUntagged: Bool = true,
                locked: Bool = false, accessLevel: AccessLevel = .notProtected, maximumTimeout: Int? = nil,
                paused: Bool = false, image: String? = nil, privileged: Bool = false, volumes: [String] = [],
                shmSize: Int? = nil) {
        self.name = name
        self.executor = executor
        self.runnerType = runnerType
        self.projectId = projectId
        self.groupId = groupId
        self.tags = tags
        self.runUntagged = runUntagged
        self.locked = locked
        self.accessLevel = accessLevel
        self.maximumTimeout = maximumTimeout
        self.paused = paused
        self.image = image
        self.privileged = privileged
        self.volumes = volumes
        self.shmSize = shmSize
    }

    /// The runner's description in GitLab, which tells the hosts' runners apart.
    public func description(on host: String) -> String { "\(host)-\(name)" }
}

/// `gitlab.serviceAccount`: a Kubernetes service account GitLab's CI jobs use, published as a kubeconfig in a
/// file-type CI/CD variable of one project or group.
public struct ServiceAccountSettings: Sendable, Equatable {
    public var name: String
    public var namespace: String
    /// The ClusterRole the account is bound to (by the ClusterRoleBinding `<name>-admin`).
    public var clusterRole: String
    /// The project whose variable holds the kubeconfig (exactly one of projectId and groupId).
    public var projectId: Int?
    public var groupId: Int?
    /// The variable's environment scope; "*" for every environment.
    public var environmentScope: String
    /// The API address GitLab's jobs reach; nil for `https://<first server address>:6443`.
    public var apiURL: String?
    public var variableKey: String

    public init(name: String = "gitlab", namespace: String = "kube-system", clusterRole: String = "cluster-admin",
                projectId: Int? = nil, groupId: Int? = nil, environmentScope: String = "*", apiURL: String? = nil,
                variableKey: String = "KUBECONFIG") {
        self.name = name
        self.namespace = namespace
        self.clusterRole = clusterRole
        self.projectId = projectId
        self.groupId = groupId
        self.environmentScope = environmentScope
        self.apiURL = apiURL
        self.variableKey = variableKey
    }

    /// The ClusterRoleBinding that gives the account its role.
    public var bindingName: String { name + "-admin" }
    /// The long-lived token Secret (Kubernetes ≥ 1.24 creates none by itself).
    public var secretName: String { name + "-token" }
}

/// `gitlab.agent`: a GitLab agent for Kubernetes (cluster_agents API) in one project, and the masked CI/CD variable of
/// that project that holds one of its tokens (installing agentk with it is left to the user).
public struct AgentSettings: Sendable, Equatable {
    public var name: String
    /// `agent.projectId`, else `serviceAccount.projectId`: agents belong to a project, never to a group.
    public var projectId: Int
    public var variableKey: String
    public var environmentScope: String

    public init(name: String, projectId: Int, variableKey: String = "GITLAB_AGENT_TOKEN", environmentScope: String = "*") {
        self.name = name
        self.projectId = projectId
        self.variableKey = variableKey
        self.environmentScope = environmentScope
    }
}
