import Foundation
import LabSupport
import Testing

/// The fake GitLab (scripts/lab.d/gitlab) answers as GitLab's REST v4 does where the GitLab client and gitlab-runner
/// meet it: runner creation, registration, verification and deletion, scopes, pagination, faults, and a request log
/// without secrets. Lab-free: one fake on 127.0.0.1 for the whole suite, reset before each test, talked to with curl.
@Suite(.serialized) struct GitLabFakeTests {
    let gitlab: FakeGitLab

    init() throws {
        gitlab = try FakeGitLab.shared.get()
        try gitlab.reset()
    }

    // MARK: runners

    @Test func aCreatedRunnerKeepsItsTagsAndItsTokenIsShownOnlyOnce() throws {
        let created = try gitlab.call("POST", "/user/runners", token: "owner-create-runner",
                                      form: ["runner_type=project_type", "project_id=200", "tag_list=docker, arm64",
                                             "description=lab-1"])
        #expect(created.status == 201, "\(created.body)")
        let runner = try created.object()
        let id = try #require(runner["id"] as? Int)
        let token = try #require(runner["token"] as? String)
        #expect(token.hasPrefix("glrt-"))
        #expect(runner.keys.contains("token_expires_at") && runner["token_expires_at"] is NSNull)

        // Tags as a JSON array give the same list as the comma string.
        let fromJSON = try gitlab.call("POST", "/user/runners", token: "owner-create-runner",
                                       json: #"{"runner_type":"project_type","project_id":200,"tag_list":["docker","arm64"]}"#)
        #expect(fromJSON.status == 201)

        for other in [id, try #require(try fromJSON.object()["id"] as? Int)] {
            let detail = try gitlab.call("GET", "/runners/\(other)", token: "owner-api")
            #expect(detail.status == 200)
            let fields = try detail.object()
            #expect(fields["tag_list"] as? [String] == ["docker", "arm64"])
            #expect(fields["status"] as? String == "never_contacted", "no runner process has talked to GitLab yet")
            #expect(fields["runner_type"] as? String == "project_type")
            #expect(fields["token"] == nil)
        }
        // Nowhere to read the token again: not in the list, not in the state without ?secrets=1.
        let list = try gitlab.call("GET", "/runners", token: "owner-api")
        #expect(list.status == 200 && !list.body.contains(token))
        #expect(try !gitlab.control("GET", "/state").body.contains(token))
        #expect(try gitlab.control("GET", "/state?secrets=1").body.contains(token))
    }

    @Test func validationErrorsReadLikeGitLabs() throws {
        let missing = try gitlab.call("POST", "/user/runners", token: "owner-api", form: [])
        #expect(missing.status == 400)
        #expect(missing.body == #"{"error":"runner_type is missing, runner_type does not have a valid value"}"#)
        let untagged = try gitlab.call("POST", "/user/runners", token: "owner-api",
                                       form: ["runner_type=group_type", "group_id=100", "run_untagged=false"])
        #expect(untagged.status == 400)
        #expect(untagged.body == #"{"message":"400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs"}"#)
        let noGroup = try gitlab.call("POST", "/user/runners", token: "owner-api",
                                      form: ["runner_type=group_type", "group_id=200"])
        #expect(noGroup.body == #"{"message":"400 Bad request - Missing/invalid group"}"#)
    }

    @Test func verifyKeepsTheTokenAndADeletedRunnerIsForbidden() throws {
        let (id, token) = try gitlab.createRunner()
        let noSystemID = try gitlab.call("POST", "/runners/verify", form: ["token=\(token)"])
        #expect(noSystemID.status == 400 && noSystemID.body == #"{"error":"system_id is missing"}"#)

        let verified = try gitlab.call("POST", "/runners/verify", form: ["token=\(token)", "system_id=s_0123456789ab"])
        #expect(verified.status == 200, "\(verified.body)")
        #expect(try verified.object()["token"] as? String == token)
        #expect(try verified.object()["id"] as? Int == id)
        let managers = try gitlab.call("GET", "/runners/\(id)/managers", token: "owner-manage-runner")
        #expect(try managers.array().compactMap { $0["system_id"] as? String } == ["s_0123456789ab"])

        // The admin deletes the runner in the UI: the token is dead for verify and for job requests.
        #expect(try gitlab.control("DELETE", "/runners/\(id)").status == 204)
        let after = try gitlab.call("POST", "/runners/verify", form: ["token=\(token)", "system_id=s_0123456789ab"])
        #expect(after.status == 403 && after.body == #"{"message":"403 Forbidden"}"#)
        #expect(try gitlab.call("POST", "/jobs/request", json: #"{"token":"\#(token)"}"#).status == 403)
        #expect(try gitlab.call("GET", "/runners/\(id)", token: "root-api").status == 404)
    }

    @Test func aRunnerPollingForJobsTurnsOnlineAndGoesOfflineAfterTwoHours() throws {
        let (id, token) = try gitlab.createRunner()
        let poll = try gitlab.call("POST", "/jobs/request",
                                   json: #"{"token":"\#(token)","system_id":"s_1","info":{"version":"18.5.0"}}"#)
        #expect(poll.status == 204 && poll.body.isEmpty)
        #expect(poll.headers["x-gitlab-last-update"]?.isEmpty == false)
        let online = try gitlab.call("GET", "/runners/\(id)", token: "root-api").object()
        #expect(online["status"] as? String == "online" && online["online"] as? Bool == true)
        #expect(online["version"] as? String == "18.5.0" && online["contacted_at"] is String)

        try gitlab.advanceClock(seconds: 2 * 3600 + 1)
        let offline = try gitlab.call("GET", "/runners/all?status=offline", token: "root-api")
        #expect(try offline.array().compactMap { $0["id"] as? Int } == [id])
        try gitlab.advanceClock(seconds: 7 * 24 * 3600)
        #expect(try gitlab.call("GET", "/runners/\(id)", token: "root-api").object()["status"] as? String == "stale")
    }

    @Test func legacyRegistrationIsGoneUntilRegistrationTokensAreAllowed() throws {
        let registration = try gitlab.registrationToken()
        let gone = try gitlab.call("POST", "/runners", form: ["token=\(registration)", "description=old"])
        #expect(gone.status == 410)
        #expect(gone.body == #"{"message":"410 Gone","reason":"runner registration disallowed"}"#)

        _ = try gitlab.control("POST", "/settings", json: #"{"allow_registration_token":true}"#)
        defer { _ = try? gitlab.control("POST", "/settings", json: #"{"allow_registration_token":false}"#) }
        let wrong = try gitlab.call("POST", "/runners", form: ["token=not-the-token"])
        #expect(wrong.status == 403 && wrong.body == #"{"message":"403 Forbidden - invalid token supplied"}"#)
        let registered = try gitlab.call("POST", "/runners", form: ["token=\(registration)", "tag_list=shell"])
        #expect(registered.status == 201)
        let token = try #require(try registered.object()["token"] as? String)
        #expect(!token.hasPrefix("glrt-"), "a registration-token runner has a legacy token")
        // A legacy token may verify without a system_id (its manager is `<legacy>`).
        #expect(try gitlab.call("POST", "/runners/verify", form: ["token=\(token)"]).status == 200)
    }

    // MARK: tokens, scopes, roles

    @Test func tokensWithoutTheScopeOrTheRoleAreRefused() throws {
        let scope = try gitlab.call("POST", "/user/runners", token: "owner-read-api",
                                    form: ["runner_type=group_type", "group_id=100"])
        #expect(scope.status == 403)
        #expect(try scope.object()["error"] as? String == "insufficient_scope")
        #expect(try scope.object()["scope"] as? String == "create_runner api")
        // create_runner alone is enough to create, and nothing else.
        #expect(try gitlab.call("GET", "/runners", token: "owner-create-runner").status == 403)

        let developer = try gitlab.call("POST", "/user/runners", token: "developer-api",
                                        form: ["runner_type=project_type", "project_id=200"])
        #expect(developer.status == 403)
        #expect(developer.body == #"{"message":"403 Forbidden - Insufficient permissions"}"#)
        let instance = try gitlab.call("POST", "/user/runners", token: "owner-api", form: ["runner_type=instance_type"])
        #expect(instance.status == 403, "instance runners need an administrator")
        #expect(try gitlab.call("GET", "/runners/all", token: "owner-api").status == 403)

        for token in [nil, "glpat-not-a-token"] {
            let unauthorized = try gitlab.call("GET", "/runners", rawToken: token)
            #expect(unauthorized.status == 401 && unauthorized.body == #"{"message":"401 Unauthorized"}"#)
        }
        let bearer = try gitlab.call("GET", "/user", token: "group-bot", bearer: true)
        #expect(try bearer.status == 200 && bearer.object()["bot"] as? Bool == true)
    }

    // MARK: variables and pagination

    @Test func twentyFiveVariablesComeInThreePagesOfTen() throws {
        for n in 1...25 {
            let made = try gitlab.call("POST", "/projects/200/variables", token: "maintainer-api",
                                       form: ["key=VAR_\(n)", "value=value-\(n)"])
            #expect(made.status == 201, "\(made.body)")
        }
        var keys: [String] = []
        for page in 1...3 {
            let reply = try gitlab.call("GET", "/projects/200/variables?per_page=10&page=\(page)", token: "maintainer-api")
            #expect(reply.status == 200)
            #expect(reply.headers["x-total"] == "25" && reply.headers["x-total-pages"] == "3")
            #expect(reply.headers["x-per-page"] == "10" && reply.headers["x-page"] == "\(page)")
            #expect(reply.headers["x-next-page"] == (page < 3 ? "\(page + 1)" : ""))
            #expect(reply.headers["x-prev-page"] == (page > 1 ? "\(page - 1)" : ""))
            let link = reply.headers["link"] ?? ""
            #expect(link.contains(#"page=1&per_page=10>; rel="first""#) && link.contains(#"page=3&per_page=10>; rel="last""#))
            #expect(link.contains(#"rel="next""#) == (page < 3))
            keys += try reply.array().compactMap { $0["key"] as? String }
        }
        #expect(keys == (1...25).map { "VAR_\($0)" })

        let duplicate = try gitlab.call("POST", "/projects/200/variables", token: "maintainer-api",
                                        form: ["key=VAR_1", "value=again"])
        #expect(duplicate.status == 400 && duplicate.body == #"{"message":{"key":["(VAR_1) has already been taken"]}}"#)
        // The same key in another environment scope is another variable; reading it then needs the filter.
        let production = try gitlab.call("POST", "/projects/lab%2Fcluster/variables", token: "maintainer-api",
                                         form: ["key=VAR_1", "value=prod", "environment_scope=production"])
        #expect(production.status == 201)
        #expect(try gitlab.call("GET", "/projects/200/variables/VAR_1", token: "maintainer-api").status == 409)
        let filtered = try gitlab.call("GET", "/projects/200/variables/VAR_1?filter%5Benvironment_scope%5D=production",
                                       token: "maintainer-api")
        #expect(try filtered.object()["value"] as? String == "prod")
        #expect(try gitlab.call("GET", "/projects/200/variables", token: "developer-api").status == 403)
    }

    @Test func anAgentHasAtMostTwoActiveTokens() throws {
        let agent = try gitlab.call("POST", "/projects/200/cluster_agents", token: "maintainer-api", form: ["name=lab"])
        #expect(agent.status == 201)
        let agentID = try #require(try agent.object()["id"] as? Int)
        var tokenIDs: [Int] = []
        for name in ["one", "two"] {
            let made = try gitlab.call("POST", "/projects/200/cluster_agents/\(agentID)/tokens", token: "maintainer-api",
                                       form: ["name=\(name)"])
            #expect(try made.status == 201 && (made.object()["token"] as? String)?.hasPrefix("glagent-") == true)
            tokenIDs.append(try #require(try made.object()["id"] as? Int))
        }
        let third = try gitlab.call("POST", "/projects/200/cluster_agents/\(agentID)/tokens", token: "maintainer-api",
                                    form: ["name=three"])
        #expect(third.body == #"{"message":"400 Bad request - An agent can have only two active tokens at a time"}"#)
        let revoked = try gitlab.call("DELETE", "/projects/200/cluster_agents/\(agentID)/tokens/\(tokenIDs[0])",
                                      token: "maintainer-api")
        #expect(revoked.status == 204)
        #expect(try gitlab.call("POST", "/projects/200/cluster_agents/\(agentID)/tokens", token: "maintainer-api",
                                form: ["name=three"]).status == 201)
        // The list shows active tokens only, never a token's value.
        let listed = try gitlab.call("GET", "/projects/200/cluster_agents/\(agentID)/tokens", token: "maintainer-api")
        #expect(try listed.array().compactMap { $0["name"] as? String } == ["two", "three"])
        #expect(!listed.body.contains("glagent-"))
        let counts = try gitlab.control("GET", "/state").object()["counts"] as? [String: Any]
        #expect(counts?["agents"] as? Int == 1)
        #expect(counts?["agent_tokens"] as? Int == 3)
        #expect(counts?["agent_tokens_active"] as? Int == 2)
    }

    @Test func agentsAreListedByProjectAndMadeByMaintainers() throws {
        #expect(try gitlab.call("POST", "/projects/200/cluster_agents", token: "developer-api",
                                form: ["name=lab"]).status == 403)
        #expect(try gitlab.call("POST", "/projects/200/cluster_agents", token: "maintainer-api",
                                form: ["name=lab"]).status == 201)
        let again = try gitlab.call("POST", "/projects/200/cluster_agents", token: "maintainer-api", form: ["name=lab"])
        #expect(again.body == #"{"message":"400 Bad request - [\"Name has already been taken\"]"}"#)
        let agents = try gitlab.call("GET", "/projects/lab%2Fcluster/cluster_agents", token: "developer-api")
        #expect(agents.status == 200)
        #expect(try agents.array().compactMap { $0["name"] as? String } == ["lab"])
        #expect(try (agents.array().first?["config_project"] as? [String: Any])?["id"] as? Int == 200)
    }

    // MARK: faults, log, persistence

    @Test func faultsFailTheNextCallsThenLetThemThrough() throws {
        let fault = try gitlab.control("POST", "/faults",
                                       json: #"{"method":"POST","path":"/api/v4/user/runners","count":3,"status":500}"#)
        #expect(fault.status == 201)
        let statuses = try (1...4).map { _ in
            try gitlab.call("POST", "/user/runners", token: "owner-api", form: ["runner_type=group_type", "group_id=100"])
        }
        #expect(statuses.map(\.status) == [500, 500, 500, 201])
        #expect(statuses[0].body == #"{"message":"500 Internal Server Error"}"#)
        let counts = try gitlab.control("GET", "/state").object()["counts"] as? [String: Any]
        #expect(counts?["runners"] as? Int == 1, "failed calls change nothing")

        _ = try gitlab.control("POST", "/faults", json: #"{"path":"/api/v4/runners*","status":429,"retry_after":30}"#)
        let throttled = try gitlab.call("GET", "/runners", token: "owner-api")
        #expect(throttled.status == 429 && throttled.headers["retry-after"] == "30" && throttled.body == "Retry later\n")
        #expect(try gitlab.call("GET", "/runners", token: "owner-api").status == 200)

        let entries = try gitlab.log()
        #expect(entries.map { $0["status"] as? Int } == [500, 500, 500, 201, 429, 200])
        #expect(entries.map { $0["fault"] as? Bool } == [true, true, true, false, true, false])
    }

    @Test func theRequestLogAndStderrNeverHoldASecret() throws {
        let (id, runnerToken) = try gitlab.createRunner()
        _ = try gitlab.call("POST", "/runners/verify", form: ["token=\(runnerToken)", "system_id=s_2"])
        _ = try gitlab.call("GET", "/runners/\(id)", token: "owner-api", bearer: true)
        _ = try gitlab.call("GET", "/runners?private_token=\(try gitlab.token("owner-api"))")
        _ = try gitlab.call("POST", "/projects/200/variables", token: "maintainer-api",
                            json: #"{"key":"KUBECONFIG","value":"very-secret-kubeconfig","variable_type":"file"}"#)
        _ = try gitlab.call("POST", "/runners", form: ["token=\(try gitlab.registrationToken())"])

        let entries = try gitlab.log()
        #expect(entries.count == 6)
        #expect(entries.first?["path"] as? String == "/api/v4/user/runners")
        #expect(entries[3]["query"] as? [String: String] == ["private_token": "[FILTERED]"])
        let logText = try gitlab.control("GET", "/log").body
        let stderr = try String(contentsOfFile: gitlab.directory + "/stderr.log", encoding: .utf8)
        let state = try gitlab.control("GET", "/state").body
        var secrets = try gitlab.seedTokens().values.map { $0 } + [runnerToken, "very-secret-kubeconfig"]
        secrets.append(try gitlab.registrationToken())
        for secret in secrets {
            #expect(!logText.contains(secret), "request log")
            #expect(!stderr.contains(secret), "stderr")
            #expect(!state.contains(secret), "state without ?secrets=1")
        }
    }

    @Test func aRestartKeepsRunners() throws {
        let (id, token) = try gitlab.createRunner()
        let copy = NSTemporaryDirectory() + "fake-gitlab-restart-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for file in ["seed.json", "state.json"] {
            try FileManager.default.copyItem(atPath: gitlab.directory + "/" + file, toPath: copy + "/" + file)
        }
        let second = try FakeGitLab(directory: copy, seeded: true)
        defer { second.stop() }
        let verified = try second.call("POST", "/runners/verify", form: ["token=\(token)", "system_id=s_3"])
        #expect(try verified.status == 200 && verified.object()["id"] as? Int == id)
        let mode = try FileManager.default.attributesOfItem(atPath: copy + "/state.json")[.posixPermissions] as? Int
        #expect(mode == 0o600, "the state holds tokens")
    }
}

/// One fake GitLab process, its state directory, and curl calls to it. Tokens travel in curl's config on stdin,
/// never in an argv.
final class FakeGitLab: @unchecked Sendable {
    static let sharedDirectory = NSTemporaryDirectory() + "fake-gitlab-" + UUID().uuidString
    static let shared = Result {
        atexit { try? FileManager.default.removeItem(atPath: FakeGitLab.sharedDirectory) }
        return try FakeGitLab(directory: sharedDirectory)
    }
    static let script = Repo.root + "/scripts/lab.d/gitlab/fake-gitlab"

    let directory: String
    let url: String
    private let process = Process()
    private let stdin = Pipe()   // held open for our lifetime: when the test process dies, the fake exits

    typealias Reply = GitLabReply

    init(directory: String, seeded: Bool = false) throws {
        self.directory = directory
        if !seeded {
            let seed = try run(Self.script, ["seed", "--state", directory])
            guard seed.status == 0 else { throw LabError.commandFailed(command: "fake-gitlab seed", output: seed) }
        }
        let stdout = Pipe()
        _ = FileManager.default.createFile(atPath: directory + "/stderr.log", contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.script)
        process.arguments = ["--listen", "127.0.0.1:0", "--state", directory, "--exit-on-stdin-eof"]
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/stderr.log"))
        try process.run()
        // The first line names the port it picked: "listening on http://127.0.0.1:PORT".
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on ") else {
            let errors = (try? String(contentsOfFile: directory + "/stderr.log", encoding: .utf8)) ?? ""
            throw LabError.commandFailed(command: "fake-gitlab", output: ProcessOutput(status: -1, stdout: text, stderr: errors))
        }
        url = String(text[range.upperBound...].prefix { $0 != "\n" })
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
        try? stdin.fileHandleForWriting.close()
    }

    func reset() throws {
        let reply = try control("POST", "/reset")
        guard reply.status == 200 else { throw LabError.malformed(path: "/-/fake/reset", line: reply.body) }
    }

    // MARK: seed

    func seedTokens() throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/seed.json"))
        let seed = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var tokens: [String: String] = [:]
        for entry in seed["tokens"] as? [[String: Any]] ?? [] {
            if let name = entry["name"] as? String, let token = entry["token"] as? String { tokens[name] = token }
        }
        return tokens
    }

    func token(_ name: String) throws -> String {
        try #require(try seedTokens()[name], "no token \(name) in the seed")
    }

    func registrationToken() throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/seed.json"))
        let seed = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return try #require((seed?["settings"] as? [String: Any])?["registration_token"] as? String)
    }

    // MARK: calls

    /// An API call below /api/v4 with the seed token `token` (by name), as PRIVATE-TOKEN or Bearer.
    func call(_ method: String, _ path: String, token: String? = nil, bearer: Bool = false, form: [String] = [],
              json: String? = nil) throws -> Reply {
        try call(method, path, rawToken: try token.map(self.token), bearer: bearer, form: form, json: json)
    }

    func call(_ method: String, _ path: String, rawToken: String?, bearer: Bool = false, form: [String] = [],
              json: String? = nil) throws -> Reply {
        var config = [option("url", url + "/api/v4" + path), option("request", method)]
        if let rawToken {
            config.append(option("header", bearer ? "Authorization: Bearer \(rawToken)" : "PRIVATE-TOKEN: \(rawToken)"))
        }
        config += form.map { option("data-urlencode", $0) }
        if let json {
            config += [option("header", "Content-Type: application/json"), option("data-binary", json)]
        }
        return try curl(config)
    }

    /// A test control below /-/fake.
    func control(_ method: String, _ path: String, json: String? = nil) throws -> Reply {
        var config = [option("url", url + "/-/fake" + path), option("request", method)]
        if let json { config.append(option("data-binary", json)) }
        return try curl(config)
    }

    func log() throws -> [[String: Any]] {
        try control("GET", "/log").object()["entries"] as? [[String: Any]] ?? []
    }

    func advanceClock(seconds: Int) throws {
        #expect(try control("POST", "/clock", json: #"{"advance":\#(seconds)}"#).status == 200)
    }

    /// A project runner (tag `lab`) created by the group owner: its id and glrt- token.
    func createRunner() throws -> (Int, String) {
        let reply = try call("POST", "/user/runners", token: "owner-create-runner",
                             form: ["runner_type=project_type", "project_id=200", "tag_list=lab"])
        let fields = try reply.object()
        return (try #require(fields["id"] as? Int), try #require(fields["token"] as? String))
    }

    private func option(_ name: String, _ value: String) -> String { Curl.option(name, value) }

    private func curl(_ config: [String]) throws -> Reply { try Curl.perform(config) }
}
