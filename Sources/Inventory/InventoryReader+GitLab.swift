import Yams

// Reading the `gitlab` block: the GitLab, its tokens, the gitlab-runner package and the runners.
extension InventoryReader {
    static let gitlabKeys = ["url", "caFile", "token", "runnerToken", "registrationToken", "timeout", "runnerPackage",
                             "concurrent", "checkInterval", "runners", "serviceAccount", "agent"]
    static let runnerPackageKeys = ["version", "aptRepository"]
    static let runnerKeys = ["name", "executor", "runnerType", "projectId", "groupId", "tags", "runUntagged", "locked",
                             "accessLevel", "maximumTimeout", "paused", "image", "privileged", "volumes", "shmSize"]
    /// Keys that only mean something to the docker executor.
    static let dockerExecutorKeys = ["image", "privileged", "volumes", "shmSize"]
    /// GitLab refuses a shorter maximum timeout ("needs to be at least 10 minutes").
    static let minimumRunnerTimeout = 600

    /// A host with the role `runner`, as read, for the checks that tie the hosts to the gitlab block.
    struct RunnerHost {
        var name: String?
        var rolesLocation: SourceLocation?
    }

    /// `entry` is the `gitlab` key, if the inventory has one; `runnerHosts` the hosts with the role `runner`.
    mutating func readGitLab(_ entry: Entry?, runnerHosts: [RunnerHost], hostsKey: SourceLocation?,
                             cluster: ClusterView = ClusterView()) -> GitLabSettings? {
        let names = runnerHosts.compactMap(\.name)
        let listed = names.isEmpty ? "" : " (" + names.joined(separator: ", ") + ")"
        guard let entry else {
            if let first = runnerHosts.first {
                let who = names.count > 1 ? "hosts \(names.map { "'\($0)'" }.joined(separator: ", ")) have"
                    : "host \(first.name.map { "'\($0)' " } ?? "")has"
                error("\(who) the role 'runner', which registers GitLab runners, but the inventory has no gitlab "
                      + "block: add one with the GitLab's url, a token and runnerPackage: {version: ...}",
                      at: first.rolesLocation ?? hostsKey ?? SourceLocation(file: file, line: 1, column: 1))
            }
            return nil
        }
        guard let fields = fields(of: entry.value, named: "gitlab", allowed: Self.gitlabKeys, context: "in gitlab",
                                  fallback: entry.keyLocation) else { return nil }
        require(["url"], in: fields, owner: "gitlab")
        var settings = GitLabSettings(url: "")
        var valid = fields["url"] != nil
        func keep<Value>(_ value: Value?, _ field: WritableKeyPath<GitLabSettings, Value?>) {
            if let value { settings[keyPath: field] = value } else { valid = false }
        }
        for entry in fields.entries {
            switch entry.key {
            case "url":
                guard let url = repositoryURL(entry, example: "https://gitlab.example.com") else { valid = false; continue }
                settings.url = url
            case "caFile": keep(path(entry), \.caFile)
            case "token", "registrationToken":
                guard let token = string(entry, secret: true) else { valid = false; continue }
                if token.hasPrefix("glrt-") {
                    error("\(entry.key) holds a runner authentication token (it starts with 'glrt-'); put it in "
                          + "runnerToken instead", at: valueLocation(entry))
                    valid = false
                }
                if entry.key == "token" { settings.token = token } else { settings.registrationToken = token }
            case "runnerToken":
                guard let token = string(entry, secret: true) else { valid = false; continue }
                if !token.hasPrefix("glrt-") {
                    error("runnerToken must be a runner authentication token, which starts with 'glrt-' (GitLab shows "
                          + "it once when the runner is created); a registration token goes in registrationToken, an "
                          + "access token in token", at: valueLocation(entry))
                    valid = false
                }
                settings.runnerToken = token
            case "timeout":
                guard let seconds = seconds(entry) else { valid = false; continue }
                settings.timeout = seconds
            case "runnerPackage":
                guard let package = readRunnerPackage(entry, required: !runnerHosts.isEmpty, listed: listed) else {
                    valid = false
                    continue
                }
                settings.runnerPackage = package
            case "concurrent":
                guard let concurrent = integer(entry, in: 1...Int.max) else { valid = false; continue }
                settings.concurrent = concurrent
            case "checkInterval":
                guard let interval = integer(entry, in: 0...Int.max) else { valid = false; continue }
                settings.checkInterval = interval
            case "runners":
                guard let runners = readRunners(entry) else { valid = false; continue }
                settings.runners = runners
            case "serviceAccount": keep(readServiceAccount(entry, cluster: cluster), \.serviceAccount)
            default: break
            }
        }
        // After the loop: the agent's project defaults to the service account's, wherever that is written.
        if let agent = fields["agent"] {
            keep(readAgent(agent, account: settings.serviceAccount, accountEntry: fields["serviceAccount"],
                           hasK3sBlock: cluster.hasK3sBlock), \.agent)
        }
        if let caFile = fields["caFile"], settings.url.hasPrefix("http://") {
            error("caFile is for a GitLab served over https://, but url is http://", at: caFile.keyLocation)
            valid = false
        }
        if let account = fields["serviceAccount"], fields["token"] == nil {
            error("serviceAccount publishes its kubeconfig through GitLab's API: gitlab needs token, an access token "
                  + "with the api scope (Maintainer of the project, Owner of the group)", at: account.keyLocation)
            valid = false
        }
        if let agent = fields["agent"], fields["token"] == nil {
            error("agent is registered through GitLab's API: gitlab needs token, an access token with the api scope "
                  + "(Maintainer of the project)", at: agent.keyLocation)
            valid = false
        }
        if !runnerHosts.isEmpty {
            if fields["token"] == nil, fields["runnerToken"] == nil, fields["registrationToken"] == nil {
                error("gitlab needs token (an access token with the create_runner scope), runnerToken or "
                      + "registrationToken to register the runners of the hosts with the role 'runner'\(listed)",
                      at: fields.location)
                valid = false
            }
            if fields["runnerPackage"] == nil {
                error("gitlab is missing required key 'runnerPackage': the hosts with the role 'runner'\(listed) get "
                      + "gitlab-runner at a pinned version, such as runnerPackage: {version: 17.7.1}",
                      at: fields.location)
                valid = false
            }
        }
        return valid ? settings : nil
    }

    private mutating func readRunnerPackage(_ entry: Entry, required: Bool, listed: String) -> RunnerPackageSettings? {
        guard let fields = fields(of: entry.value, named: "runnerPackage", allowed: Self.runnerPackageKeys,
                                  context: "in runnerPackage", fallback: entry.keyLocation) else { return nil }
        var package = RunnerPackageSettings()
        var valid = true
        if required, fields["version"] == nil {
            error("runnerPackage is missing required key 'version': the hosts with the role 'runner'\(listed) get "
                  + "gitlab-runner at a pinned release, such as 17.7.1", at: fields.location)
            valid = false
        }
        if let entry = fields["version"] {
            if let version = string(entry) {
                if let problem = InventorySyntax.runnerVersionProblem(version) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                package.version = version
            } else {
                valid = false
            }
        }
        if let entry = fields["aptRepository"] {
            package.aptRepository = repositoryURL(entry, example: RunnerPackageSettings.defaultAptRepository)
            if package.aptRepository == nil { valid = false }
        }
        return valid ? package : nil
    }

    // MARK: Runners

    private mutating func readRunners(_ entry: Entry) -> [RunnerSettings]? {
        guard case .sequence(let list) = entry.value else {
            error("runners must be a list of runners such as [{name: docker, executor: docker, image: docker:27}], "
                  + "got \(describe(entry.value))", at: valueLocation(entry))
            return nil
        }
        var runners: [RunnerSettings] = []
        var names: [String: SourceLocation] = [:]
        var valid = true
        for item in list {
            guard let (runner, nameLocation) = readRunner(item, fallback: entry.keyLocation) else {
                valid = false
                continue
            }
            if let first = names[runner.name] {
                error("duplicate runner name '\(runner.name)'; first at \(Self.reference(to: first, from: nameLocation)) "
                      + "(names tell a host's runners apart)", at: nameLocation)
                valid = false
                continue
            }
            names[runner.name] = nameLocation
            runners.append(runner)
        }
        return valid ? runners : nil
    }

    /// One runner, and where its name is written.
    private mutating func readRunner(_ node: Node, fallback: SourceLocation) -> (RunnerSettings, SourceLocation)? {
        guard let fields = fields(of: node, named: "each runner", allowed: Self.runnerKeys, context: "in runner",
                                  fallback: fallback) else { return nil }
        require(["name"], in: fields, owner: "runner")
        var runner = RunnerSettings(name: "")
        var valid = fields["name"] != nil
        var nameLocation = fields.location
        var tagsUnread = false
        func keep<Value>(_ value: Value?, _ field: WritableKeyPath<RunnerSettings, Value>) {
            if let value { runner[keyPath: field] = value } else { valid = false }
        }
        func keepOptional<Value>(_ value: Value?, _ field: WritableKeyPath<RunnerSettings, Value?>) {
            if let value { runner[keyPath: field] = value } else { valid = false }
        }
        for entry in fields.entries {
            switch entry.key {
            case "name":
                guard let name = string(entry) else { valid = false; continue }
                if let problem = InventorySyntax.runnerNameProblem(name) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                runner.name = name
                nameLocation = valueLocation(entry)
            case "executor": keep(choice(entry, of: RunnerSettings.Executor.self), \.executor)
            case "runnerType": keep(choice(entry, of: RunnerSettings.RunnerType.self), \.runnerType)
            case "projectId": keepOptional(integer(entry, in: 1...Int.max), \.projectId)
            case "groupId": keepOptional(integer(entry, in: 1...Int.max), \.groupId)
            case "tags":
                guard let tags = readTags(entry) else { valid = false; tagsUnread = true; continue }
                runner.tags = tags
            case "runUntagged": keep(boolean(entry), \.runUntagged)
            case "locked": keep(boolean(entry), \.locked)
            case "accessLevel": keep(choice(entry, of: RunnerSettings.AccessLevel.self), \.accessLevel)
            case "maximumTimeout":
                guard let seconds = integer(entry, in: 1...Int.max) else { valid = false; continue }
                if seconds < Self.minimumRunnerTimeout {
                    error("maximumTimeout must be at least \(Self.minimumRunnerTimeout) seconds (GitLab's minimum, "
                          + "10 minutes), got \(seconds)", at: valueLocation(entry))
                    valid = false
                }
                runner.maximumTimeout = seconds
            case "paused": keep(boolean(entry), \.paused)
            case "image": keepOptional(string(entry), \.image)
            case "privileged": keep(boolean(entry), \.privileged)
            case "volumes": keep(readVolumes(entry), \.volumes)
            case "shmSize": keepOptional(integer(entry, in: 0...Int.max), \.shmSize)
            default: break
            }
        }
        valid = checkRunnerType(&runner, fields) && valid
        valid = checkExecutor(runner, fields) && valid
        if let entry = fields["runUntagged"], !runner.runUntagged, runner.tags.isEmpty, !tagsUnread {
            error("runner '\(runner.name)' has no tags and runUntagged is false, so it would never get a job: add tags "
                  + "or remove runUntagged", at: valueLocation(entry))
            valid = false
        }
        return valid ? (runner, nameLocation) : nil
    }

    /// runnerType and its id: explicit, or project_type with projectId, group_type with groupId, else instance_type.
    private mutating func checkRunnerType(_ runner: inout RunnerSettings, _ fields: Fields) -> Bool {
        let project = fields["projectId"], group = fields["groupId"]
        guard let typeEntry = fields["runnerType"] else {
            if let project, let group {
                let (first, second) = project.keyLocation.line <= group.keyLocation.line ? (project, group)
                    : (group, project)
                error("a runner belongs to one project or one group: set projectId or groupId, not both (the other is "
                      + "at \(Self.reference(to: first.keyLocation, from: second.keyLocation)))",
                      at: second.keyLocation)
                return false
            }
            runner.runnerType = project != nil ? .projectType : group != nil ? .groupType : .instanceType
            return true
        }
        var valid = true
        switch runner.runnerType {
        case .projectType where project == nil:
            error("runnerType project_type needs projectId, the numeric id of the project the runner serves",
                  at: valueLocation(typeEntry))
            valid = false
        case .groupType where group == nil:
            error("runnerType group_type needs groupId, the numeric id of the group the runner serves",
                  at: valueLocation(typeEntry))
            valid = false
        default: break
        }
        if let project, runner.runnerType != .projectType {
            error("projectId is only for runnerType project_type, and this runner is \(runner.runnerType.rawValue)",
                  at: project.keyLocation)
            valid = false
        }
        if let group, runner.runnerType != .groupType {
            error("groupId is only for runnerType group_type, and this runner is \(runner.runnerType.rawValue)",
                  at: group.keyLocation)
            valid = false
        }
        return valid
    }

    /// The docker executor needs an image; the shell executor takes none of the docker keys.
    private mutating func checkExecutor(_ runner: RunnerSettings, _ fields: Fields) -> Bool {
        switch runner.executor {
        case .docker:
            guard fields["image"] == nil, fields["name"] != nil else { return true }
            error("runner '\(runner.name)' uses the docker executor and needs image, the default image of its jobs "
                  + "(such as docker:27)", at: fields.location)
            return false
        case .shell:
            var valid = true
            for key in Self.dockerExecutorKeys {
                guard let entry = fields[key] else { continue }
                error("\(key) is for the docker executor, and runner '\(runner.name)' uses the shell executor",
                      at: entry.keyLocation)
                valid = false
            }
            return valid
        }
    }

    private mutating func readTags(_ entry: Entry) -> [String]? {
        guard let items = stringList(entry, example: "[docker, pi]") else { return nil }
        var tags: [String] = []
        var valid = true
        for (tag, location) in items {
            if let problem = InventorySyntax.tagProblem(tag) {
                error(problem, at: location)
                valid = false
            } else if tags.contains(tag) {
                error("tag '\(tag)' is listed twice", at: location)
            } else {
                tags.append(tag)
            }
        }
        return valid ? tags : nil
    }

    private mutating func readVolumes(_ entry: Entry) -> [String]? {
        guard let items = stringList(entry, example: "[/certs/client, /cache]") else { return nil }
        var volumes: [String] = []
        for (volume, location) in items {
            if volumes.contains(volume) {
                error("volume '\(volume)' is listed twice", at: location)
                continue
            }
            volumes.append(volume)
        }
        return volumes
    }
}
