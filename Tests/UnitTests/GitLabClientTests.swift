import Engine
import Foundation
@testable import GitLab
import Logging
import ProvisionBasics
import Steps
import Synchronization
import Testing

private let accessToken = "glpat-Acc3ssTok3nSecret"
private let runnerToken = "glrt-RunnerTok3nSecret"

/// A GitLab client aimed at a loopback server, with no real waiting between attempts: the waits are recorded.
private struct Harness {
    let server: LoopbackHTTPServer
    let waits = Waits()
    var client: GitLabClient

    init(retry: RetryPolicy = .never, timeouts: GitLabClient.Timeouts = .init(), logger: Logger = .silent,
         tokenName: String = "the GitLab token", _ handler: @escaping @Sendable (LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Reply) throws {
        server = try LoopbackHTTPServer(handler)
        client = try GitLabClient(baseURL: server.baseURL, token: Secret(accessToken), tokenName: tokenName,
                                  timeouts: timeouts, retry: retry, logger: logger)
        client.sleep = { [waits] in waits.add($0) }
    }

    init(retry: RetryPolicy = .never, timeouts: GitLabClient.Timeouts = .init(), logger: Logger = .silent,
         replies: [LoopbackHTTPServer.Reply]) throws {
        let counter = Counter()
        try self.init(retry: retry, timeouts: timeouts, logger: logger) { _ in replies[min(counter.next(), replies.count - 1)] }
    }
}

final class Waits: Sendable {
    private let list = Mutex<[Duration]>([])
    func add(_ duration: Duration) { list.withLock { $0.append(duration) } }
    var all: [Duration] { list.withLock { $0 } }
}

private let retrying = RetryPolicy(maxAttempts: 3, initialDelay: .milliseconds(500), maxDelay: .seconds(30),
                                   multiplier: 2, jitter: 0, maxTotal: .seconds(120))

private let created = LoopbackHTTPServer.Reply.json(201, #"{"id":9171,"token":"\#(runnerToken)","token_expires_at":null}"#)

@Suite struct GitLabRunnerCallTests {
    @Test func createRunnerSendsTheAccessTokenAndTheSettingsAndReadsTheRunnerToken() async throws {
        let lab = try Harness(replies: [created])
        let runner = try await lab.client.createRunner(.group(id: 42), settings: RunnerSettings(
            description: "pi-1", tags: ["arm64", "k3s"], runUntagged: false, locked: false, accessLevel: .notProtected,
            maximumTimeout: 3600, paused: false, maintenanceNote: "provisioned"))

        #expect(runner.id == 9171)
        #expect(runner.token.revealed == runnerToken)
        #expect(runner.tokenExpiresAt == nil)
        #expect("\(runner.token)" == "[REDACTED]")
        let request = try #require(lab.server.requests.first)
        #expect(request.method == "POST")
        #expect(request.target == "/api/v4/user/runners")
        #expect(request.headers["private-token"] == accessToken)
        #expect(request.headers["content-type"] == "application/json")
        let body = request.json
        #expect(body["runner_type"] as? String == "group_type")
        #expect(body["group_id"] as? Int == 42)
        #expect(body["project_id"] == nil)
        #expect(body["tag_list"] as? [String] == ["arm64", "k3s"])
        #expect(body["run_untagged"] as? Bool == false)
        #expect(body["locked"] as? Bool == false)
        #expect(body["access_level"] as? String == "not_protected")
        #expect(body["maximum_timeout"] as? Int == 3600)
        #expect(body["paused"] as? Bool == false)
        #expect(body["description"] as? String == "pi-1")
        #expect(body["maintenance_note"] as? String == "provisioned")
        #expect(body["token"] == nil)
    }

    @Test func aProjectRunnerLeavesUnsetSettingsToGitLab() async throws {
        let lab = try Harness(replies: [.json(201, #"{"id":1,"token":"glrt-x","token_expires_at":"2026-07-01T10:00:00.123Z"}"#)])
        let runner = try await lab.client.createRunner(.project(id: 7), settings: RunnerSettings())
        let expires = try #require(runner.tokenExpiresAt)
        #expect(abs(expires.timeIntervalSince1970 - 1_782_900_000.123) < 0.001)
        let body = try #require(lab.server.requests.first).json
        #expect(body.keys.sorted() == ["project_id", "runner_type"])
        #expect(body["runner_type"] as? String == "project_type")
    }

    @Test func legacyRegistrationCarriesTheRegistrationTokenInTheBody() async throws {
        let lab = try Harness(replies: [created])
        _ = try await lab.client.registerLegacy(registrationToken: Secret("GR1348941legacy"), settings: RunnerSettings(tags: ["a"]))
        let request = try #require(lab.server.requests.first)
        #expect(request.target == "/api/v4/runners")
        #expect(request.json["token"] as? String == "GR1348941legacy")
        #expect(request.headers["private-token"] == nil)
    }

    @Test func verifyTellsValidInvalidAndOrphanedApart() async throws {
        let lab = try Harness { request in
            switch request.json["token"] as? String {
            case "glrt-valid": .json(200, #"{"id":5,"token":"glrt-valid","token_expires_at":null}"#)
            case "glrt-orphan": .json(422, #"{"message":"422 Unprocessable Entity"}"#)
            default: .json(403, #"{"message":"403 Forbidden"}"#)
            }
        }
        #expect(try await lab.client.verifyRunner(token: Secret("glrt-valid"), systemID: "s_0123456789ab")
                == .valid(id: 5, tokenExpiresAt: nil))
        #expect(try await lab.client.verifyRunner(token: Secret("glrt-gone"), systemID: "s_0123456789ab") == .invalid)
        #expect(try await lab.client.verifyRunner(token: Secret("glrt-orphan"), systemID: nil) == .orphaned)
        for request in lab.server.requests {
            #expect(request.method == "POST")
            #expect(request.target == "/api/v4/runners/verify")
            #expect(request.headers["private-token"] == nil)
        }
        #expect(lab.server.requests.first?.json["system_id"] as? String == "s_0123456789ab")
    }

    @Test func unregisteringByTokenSendsAFormBodyAndReportsAnUnknownToken() async throws {
        let lab = try Harness { request in
            request.form["token"] == runnerToken ? .empty(204) : .json(403, #"{"message":"403 Forbidden"}"#)
        }
        #expect(try await lab.client.deleteRunner(byToken: Secret(runnerToken)))
        #expect(try await !lab.client.deleteRunner(byToken: Secret("glrt-unknown")))
        #expect(try await lab.client.deleteRunnerManager(token: Secret(runnerToken), systemID: "s_1"))
        let requests = lab.server.requests
        #expect(requests.map(\.method) == ["DELETE", "DELETE", "DELETE"])
        #expect(requests.map(\.target) == ["/api/v4/runners", "/api/v4/runners", "/api/v4/runners/managers"])
        #expect(requests[0].headers["content-type"] == "application/x-www-form-urlencoded")
        #expect(requests[2].form == ["token": runnerToken, "system_id": "s_1"])
        #expect(requests.allSatisfy { $0.headers["private-token"] == nil })
    }

    @Test func deletingByIDUsesTheAccessTokenAndTreatsAMissingRunnerAsGone() async throws {
        let lab = try Harness { request in
            request.path == "/api/v4/runners/5" ? .empty(204) : .json(404, #"{"message":"404 Runner Not Found"}"#)
        }
        #expect(try await lab.client.deleteRunner(id: 5))
        #expect(try await !lab.client.deleteRunner(id: 6))
        #expect(lab.server.requests.allSatisfy { $0.headers["private-token"] == accessToken })
    }

    @Test func runnerDetailsAreRead() async throws {
        let lab = try Harness(replies: [.json(200, """
            {"id":9,"description":"pi-1","name":null,"runner_type":"project_type","status":"never_contacted",
             "online":false,"paused":false,"is_shared":false,"ip_address":null,"active":true,
             "tag_list":["arm64","k3s"],"contacted_at":null,"maintenance_note":"provisioned",
             "access_level":"ref_protected","maximum_timeout":3600,"locked":true,"run_untagged":false,
             "projects":[{"id":7}],"groups":[]}
            """)])
        let runner = try await lab.client.runner(id: 9)
        #expect(runner.status == .neverContacted)
        #expect(runner.online == false)
        #expect(runner.tags == ["arm64", "k3s"])
        #expect(runner.contactedAt == nil)
        #expect(runner.runnerType == .project)
        #expect(runner.accessLevel == .refProtected)
        #expect(runner.maximumTimeout == 3600)
        #expect(lab.server.requests.first?.target == "/api/v4/runners/9")
    }

    @Test func listingFollowsXNextPageAndSendsTheFilters() async throws {
        let lab = try Harness { request in
            let pages = ["1": (#"[{"id":1},{"id":2}]"#, "2"), "2": (#"[{"id":3}]"#, "3"), "3": (#"[{"id":4}]"#, "")]
            let (items, next) = pages[request.query["page"] ?? "1"]!
            return .json(200, items, headers: [("X-Next-Page", next), ("X-Page", request.query["page"] ?? "1")])
        }
        let runners = try await lab.client.listRunners(.project("infra/cluster"), filter: RunnerFilter(
            type: .project, status: .online, tags: ["arm64", "k3s"]))
        #expect(runners.map(\.id) == [1, 2, 3, 4])
        let requests = lab.server.requests
        #expect(requests.map { $0.query["page"] } == ["1", "2", "3"])
        #expect(requests.allSatisfy { $0.path == "/api/v4/projects/infra%2Fcluster/runners" })
        #expect(requests.allSatisfy { $0.query["per_page"] == "100" && $0.query["tag_list"] == "arm64,k3s"
                                      && $0.query["status"] == "online" && $0.query["type"] == "project_type" })
    }

    @Test func pagesThatGoRoundInACircleAreAnError() async throws {
        let lab = try Harness { request in
            .json(200, #"[{"id":1}]"#, headers: [("X-Next-Page", request.query["page"] == "1" ? "2" : "1")])
        }
        let error = try await #require(throws: GitLabError.self) { try await lab.client.listRunners() }
        #expect(error.kind == .invalidResponse)
        #expect(lab.server.requests.count == 2)
    }
}

@Suite struct GitLabVariableAndAgentTests {
    @Test func variablesAreListedOverAllPagesWithTheirValuesHidden() async throws {
        let lab = try Harness { request in
            request.query["page"] == "1"
                ? .json(200, #"[{"key":"KUBECONFIG","value":"apiVersion: v1","variable_type":"file","protected":true,"masked":false,"raw":true,"environment_scope":"production"}]"#,
                        headers: [("x-next-page", "2")])
                : .json(200, #"[{"key":"HIDDEN","value":null,"variable_type":"env_var","protected":false,"masked":true,"raw":false,"environment_scope":"*","hidden":true}]"#,
                        headers: [("x-next-page", "")])
        }
        let variables = try await lab.client.variables(of: .group("infra"))
        #expect(variables.map(\.key) == ["KUBECONFIG", "HIDDEN"])
        #expect(variables[0].variableType == .file)
        #expect(variables[0].value.revealed == "apiVersion: v1")
        #expect(variables[0].environmentScope == "production")
        #expect(variables[1].hidden && variables[1].value.isEmpty)
        #expect(!"\(variables)".contains("apiVersion"))
        #expect(lab.server.requests.first?.path == "/api/v4/groups/infra/variables")
    }

    @Test func oneVariableIsReadByKeyAndEnvironmentScope() async throws {
        let lab = try Harness { request in
            switch request.path {
            case "/api/v4/projects/infra%2Fcluster/variables/KUBECONFIG":
                .json(200, #"{"key":"KUBECONFIG","value":"x","variable_type":"file","environment_scope":"production"}"#)
            case "/api/v4/projects/infra%2Fcluster/variables/NONE": .json(404, #"{"message":"404 Variable Not Found"}"#)
            default: .json(404, #"{"message":"404 Project Not Found"}"#)
            }
        }
        let found = try await lab.client.variable("KUBECONFIG", of: .project("infra/cluster"), environmentScope: "production")
        #expect(found?.environmentScope == "production")
        #expect(lab.server.requests.first?.query["filter[environment_scope]"] == "production")
        #expect(try await lab.client.variable("NONE", of: .project("infra/cluster")) == nil)
        let error = try await #require(throws: GitLabError.self) {
            try await lab.client.variable("KUBECONFIG", of: .project("infra/gone"))
        }
        #expect(error.kind == .notFound)
        #expect(error.description.contains("404 Project Not Found"))
    }

    @Test func createPostsEveryFieldAndUpdatePutsByScope() async throws {
        // GitLab answers with the whole variable: what was sent, plus the key and scope of the URL for an update.
        let lab = try Harness { request in
            var variable = request.json
            if request.method == "PUT" {
                variable["key"] = request.path.split(separator: "/").last.map(String.init)
                variable["environment_scope"] = request.query["filter[environment_scope]"]
            }
            let body = try! JSONSerialization.data(withJSONObject: variable)
            return .json(request.method == "POST" ? 201 : 200, String(decoding: body, as: UTF8.self))
        }
        let variable = CIVariable(key: "KUBE_TOKEN", value: Secret("eyJhbGciOi"), protected: true, masked: true,
                                  environmentScope: "production")
        _ = try await lab.client.createVariable(variable, in: .project("7"))
        var changed = variable
        changed.value = Secret("eyJnew")
        let updated = try await lab.client.updateVariable(changed, in: .project("7"))
        #expect(updated.value.revealed == "eyJnew")
        #expect(updated.environmentScope == "production")

        let (create, update) = (lab.server.requests[0], lab.server.requests[1])
        #expect(create.method == "POST" && create.target == "/api/v4/projects/7/variables")
        #expect(create.json["key"] as? String == "KUBE_TOKEN")
        #expect(create.json["value"] as? String == "eyJhbGciOi")
        #expect(create.json["variable_type"] as? String == "env_var")
        #expect(create.json["protected"] as? Bool == true)
        #expect(create.json["masked"] as? Bool == true)
        #expect(create.json["raw"] as? Bool == false)
        #expect(create.json["environment_scope"] as? String == "production")
        #expect(update.method == "PUT" && update.path == "/api/v4/projects/7/variables/KUBE_TOKEN")
        #expect(update.query["filter[environment_scope]"] == "production")
        #expect(update.json["value"] as? String == "eyJnew")
        #expect(update.json["key"] == nil && update.json["environment_scope"] == nil)
    }

    @Test func clusterAgentsAndTheirTokens() async throws {
        let lab = try Harness { request in
            switch (request.method, request.path) {
            case ("GET", "/api/v4/projects/7/cluster_agents"):
                .json(200, #"[{"id":3,"name":"k3s","created_at":"2026-01-02T03:04:05Z","created_by_user_id":1,"config_project":{"id":7,"path_with_namespace":"infra/cluster"}}]"#,
                      headers: [("x-next-page", "")])
            case ("POST", "/api/v4/projects/7/cluster_agents"):
                .json(201, #"{"id":4,"name":"edge","created_at":"2026-01-02T03:04:05.000Z","created_by_user_id":1}"#)
            case ("POST", "/api/v4/projects/7/cluster_agents/4/tokens"):
                .json(201, #"{"id":11,"name":"provision","agent_id":4,"status":"active","token":"glagent-S3cret"}"#)
            default: .json(404, #"{"message":"404 Not Found"}"#)
            }
        }
        #expect(try await lab.client.clusterAgents(project: "7").map(\.name) == ["k3s"])
        let agent = try await lab.client.createClusterAgent(named: "edge", project: "7")
        #expect(lab.server.requests[1].json["name"] as? String == "edge")
        let token = try await lab.client.createClusterAgentToken(agentID: agent.id, project: "7", name: "provision",
                                                                 description: "k3s cluster")
        #expect(token.token?.revealed == "glagent-S3cret")
        #expect(lab.server.requests[2].json["description"] as? String == "k3s cluster")
        #expect(!"\(token)".contains("glagent-S3cret"))
    }
}

/// The engine's side of the agent step: GitLab's answers become AgentState, and a new token goes straight into the
/// variable without coming back.
@Suite struct GitLabAgentGatewayTests {
    static func handler(_ request: LoopbackHTTPServer.Request) -> LoopbackHTTPServer.Reply {
        switch (request.method, request.path) {
        case ("GET", "/api/v4/projects/200/cluster_agents"):
            .json(200, #"[{"id":2,"name":"other"},{"id":3,"name":"lab"}]"#, headers: [("x-next-page", "")])
        case ("GET", "/api/v4/projects/200/cluster_agents/3/tokens"):
            .json(200, #"[{"id":9,"name":"b","status":"active"},{"id":5,"name":"a","status":"active"}]"#,
                  headers: [("x-next-page", "")])
        case ("POST", "/api/v4/projects/200/cluster_agents/3/tokens"):
            .json(201, #"{"id":12,"name":"provision","agent_id":3,"status":"active","token":"glagent-N3wTok3nValue"}"#)
        case ("PUT", "/api/v4/projects/200/variables/GITLAB_AGENT_TOKEN"):
            .json(200, #"{"key":"GITLAB_AGENT_TOKEN","value":"glagent-N3wTok3nValue","variable_type":"env_var"}"#)
        default: .json(404, #"{"message":"404 Not Found"}"#)
        }
    }

    @Test func theAgentIsFoundByNameWithItsActiveTokensOldestFirst() async throws {
        let lab = try Harness(Self.handler)
        let gateway = GitLabAPIGateway(client: lab.client)
        #expect(await gateway.answer(.clusterAgent(project: 200, name: "lab"))
            == .clusterAgent(AgentState(id: 3, activeTokens: [AgentTokenState(id: 5, name: "a"), AgentTokenState(id: 9, name: "b")])))
        #expect(await gateway.answer(.clusterAgent(project: 200, name: "edge")) == .clusterAgent(nil))
    }

    @Test func aNewTokenGoesIntoTheVariableWithItsIdAndIsNotReturned() async throws {
        let lab = try Harness(Self.handler)
        let gateway = GitLabAPIGateway(client: lab.client)
        let write = VariableWrite(owner: .project(200), key: "GITLAB_AGENT_TOKEN", environmentScope: "*",
                                  state: VariableState(value: "", variableType: "env_var", protected: true, masked: true, raw: true))
        let shared = try await gateway.perform(.publishAgentToken(AgentTokenPublication(
            project: 200, agentID: 3, agentName: "lab", tokenName: "provision", tokenDescription: "for GITLAB_AGENT_TOKEN",
            variable: write, createVariable: false)))
        #expect(shared.isEmpty)
        let requests = lab.server.requests
        #expect(requests.map { "\($0.method) \($0.path)" } == ["POST /api/v4/projects/200/cluster_agents/3/tokens",
                                                               "PUT /api/v4/projects/200/variables/GITLAB_AGENT_TOKEN"])
        let put = try #require(requests.last)
        #expect(put.json["value"] as? String == "glagent-N3wTok3nValue")
        #expect(put.json["masked"] as? Bool == true && put.json["protected"] as? Bool == true)
        #expect(put.json["description"] as? String == "token 12 of GitLab agent lab (kept by provision)")
        #expect(put.query["filter[environment_scope]"] == "*")
    }
}

@Suite struct GitLabErrorTests {
    private func failure(_ reply: LoopbackHTTPServer.Reply, tokenName: String = "the GitLab token",
                         _ call: @Sendable (GitLabClient) async throws -> Void) async throws -> GitLabError {
        let lab = try Harness(tokenName: tokenName) { _ in reply }
        let error = try await #require(throws: GitLabError.self) { try await call(lab.client) }
        #expect(!error.description.contains(accessToken))
        return error
    }

    @Test func aRejectedTokenIsNamedWithoutShowingIt() async throws {
        let error = try await failure(.json(401, #"{"message":"401 Unauthorized"}"#), tokenName: "the inventory's gitlab.token") {
            _ = try await $0.runner(id: 1)
        }
        #expect(error.kind == .unauthorized)
        #expect(error.description == "GitLab rejected the inventory's gitlab.token (401 Unauthorized) for GET "
            + "/api/v4/runners/1: it is wrong, expired or revoked; create a new one and update the inventory")
    }

    @Test func aMissingScopeIsNamedForEachCall() async throws {
        let scope = LoopbackHTTPServer.Reply.json(403, #"{"error":"insufficient_scope","error_description":"The request requires higher privileges than provided by the access token.","scope":"api"}"#)
        let create = try await failure(scope) { _ = try await $0.createRunner(.instance, settings: .init()) }
        #expect(create.kind == .insufficientScope)
        #expect(create.description.hasPrefix(
            "The GitLab token lacks the `create_runner` scope needed for POST /api/v4/user/runners"))
        let delete = try await failure(scope) { _ = try await $0.deleteRunner(id: 3) }
        #expect(delete.description.contains("lacks the `manage_runner` scope needed for DELETE /api/v4/runners/3"))
        let read = try await failure(scope) { _ = try await $0.listRunners() }
        #expect(read.description.contains("lacks the `read_api` scope needed for GET /api/v4/runners"))
        let write = try await failure(scope) {
            _ = try await $0.createVariable(CIVariable(key: "K", value: Secret("v")), in: .group("9"))
        }
        #expect(write.description.contains("lacks the `api` scope needed for POST /api/v4/groups/9/variables"))
    }

    @Test func aMissingRoleIsNamedForTheRunnerScope() async throws {
        let forbidden = LoopbackHTTPServer.Reply.json(403, #"{"message":"403 Forbidden"}"#)
        let group = try await failure(forbidden) { _ = try await $0.createRunner(.group(id: 42), settings: .init()) }
        #expect(group.kind == .forbidden)
        #expect(group.description.contains("this needs the Owner role on group 42"))
        let project = try await failure(forbidden) { _ = try await $0.createRunner(.project(id: 7), settings: .init()) }
        #expect(project.description.contains("this needs the Maintainer role on project 7"))
        let instance = try await failure(forbidden) { _ = try await $0.createRunner(.instance, settings: .init()) }
        #expect(instance.description.contains("this needs an administrator"))
    }

    @Test func legacyRegistrationRefusals() async throws {
        let gone = try await failure(.json(410, #"{"message":"410 Gone"}"#)) {
            _ = try await $0.registerLegacy(registrationToken: Secret("GR1348941x"), settings: .init())
        }
        #expect(gone.kind == .registrationTokensDisabled)
        #expect(gone.description.hasPrefix("registration tokens are disabled on this GitLab (since 17.0); create the "
            + "runner with an access token instead"))
        let wrong = try await failure(.json(403, #"{"message":"403 Forbidden"}"#)) {
            _ = try await $0.registerLegacy(registrationToken: Secret("GR1348941x"), settings: .init())
        }
        #expect(wrong.description.contains("GitLab rejected the registration token (403 Forbidden)"))
    }

    @Test func aBadRequestGivesGitLabsMessageWithSecretsMasked() async throws {
        let fields = try await failure(.json(400, #"{"message":{"tag_list":["is too long"],"runner_type":["is invalid"]}}"#)) {
            _ = try await $0.createRunner(.instance, settings: .init())
        }
        #expect(fields.kind == .rejected)
        #expect(fields.description == "GitLab refused POST /api/v4/user/runners (400 Bad Request): GitLab says "
            + "runner_type is invalid; tag_list is too long")
        let echoed = try await failure(.json(400, #"{"message":"400 Bad request - token \#(accessToken) is odd"}"#)) {
            _ = try await $0.runner(id: 1)
        }
        #expect(echoed.description.contains("token [REDACTED] is odd"))
    }

    @Test func anUnreachableGitLabIsNamedWithAHint() async throws {
        let port = try LoopbackHTTPServer.closedPort()
        var client = try GitLabClient(baseURL: URL(string: "http://127.0.0.1:\(port)")!, token: Secret(accessToken),
                                      retry: retrying)
        let waits = Waits()
        client.sleep = { [waits] in waits.add($0) }
        let error = try await #require(throws: GitLabError.self) { _ = try await client.createRunner(.instance, settings: .init()) }
        #expect(error.kind == .transport)
        #expect(error.description.contains("POST http://127.0.0.1:\(port)/api/v4/user/runners failed"))
        #expect(error.description.contains("after 3 attempts"))
        #expect(error.description.contains("check the GitLab URL"))
        #expect(waits.all.count == 2)
    }

    @Test func anUntrustedCertificateSuggestsTheCAFile() async throws {
        let tls = try SelfSignedTLSServer()
        defer { tls.stop() }
        let client = try GitLabClient(baseURL: URL(string: "https://127.0.0.1:\(tls.port)")!, token: Secret(accessToken),
                                      retry: retrying)
        let error = try await #require(throws: GitLabError.self) { _ = try await client.runner(id: 1) }
        #expect(error.kind == .transport)
        #expect(error.description.contains("set gitlab.caFile in the inventory"))
    }

    @Test func onlyHTTPAddressesAreAccepted() {
        #expect(throws: GitLabError.self) {
            try GitLabClient(baseURL: URL(string: "ftp://gitlab.example.com")!, token: Secret(accessToken))
        }
        #expect(throws: GitLabError.self) {
            try GitLabClient(baseURL: URL(string: "https://gitlab.example.com/?private_token=x")!, token: Secret(accessToken))
        }
    }
}

@Suite struct GitLabRetryTests {
    @Test func serverErrorsAreRetriedWithBackoff() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(503), .empty(502), .json(200, #"{"id":9}"#)])
        #expect(try await lab.client.runner(id: 9).id == 9)
        #expect(lab.server.requests.count == 3)
        #expect(lab.waits.all == [.milliseconds(500), .seconds(1)])
    }

    @Test func retryAfterIsHonoured() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(429, headers: [("Retry-After", "7")]), .json(200, #"{"id":9}"#)])
        _ = try await lab.client.runner(id: 9)
        #expect(lab.waits.all == [.seconds(7)])
    }

    @Test func aRetryAfterBeyondTheBudgetEndsTheRetries() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(429, headers: [("Retry-After", "600")])])
        let error = try await #require(throws: GitLabError.self) { _ = try await lab.client.runner(id: 9) }
        #expect(error.kind == .rateLimited)
        #expect(lab.server.requests.count == 1)
        #expect(lab.waits.all.isEmpty)
    }

    @Test func attemptsAreBounded() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(502)])
        let error = try await #require(throws: GitLabError.self) { _ = try await lab.client.runner(id: 9) }
        #expect(error.kind == .serverError)
        #expect(error.description.contains("GitLab answered 502 Bad Gateway for GET /api/v4/runners/9 after 3 attempts"))
        #expect(lab.server.requests.count == 3)
    }

    @Test func aCreateIsRetriedWhenGitLabSaysItDidNothing() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(503), created])
        #expect(try await lab.client.createRunner(.instance, settings: .init()).id == 9171)
        #expect(lab.server.requests.count == 2)
    }

    @Test func aCreateThatTimedOutAfterSendingIsNotSentAgain() async throws {
        let lab = try Harness(retry: retrying, timeouts: .init(request: .milliseconds(300)),
                              replies: [.init(status: 201, delay: .seconds(2)), created])
        let error = try await #require(throws: GitLabError.self) {
            _ = try await lab.client.createRunner(.instance, settings: .init())
        }
        #expect(error.kind == .outcomeUnknown)
        #expect(error.description.contains("GitLab may have created a runner"))
        #expect(lab.server.requests.count == 1)
    }

    @Test func aGatewayTimeoutOnACreateIsNotSentAgain() async throws {
        let lab = try Harness(retry: retrying, replies: [.empty(504), created])
        let error = try await #require(throws: GitLabError.self) {
            _ = try await lab.client.createClusterAgentToken(agentID: 1, project: "7", name: "provision")
        }
        #expect(error.kind == .outcomeUnknown)
        #expect(error.description.contains("GitLab may have created the agent token provision"))
        #expect(lab.server.requests.count == 1)
    }

    @Test func aReadThatTimedOutIsRetried() async throws {
        let lab = try Harness(retry: retrying, timeouts: .init(request: .milliseconds(300)),
                              replies: [.init(status: 200, delay: .seconds(2)), .json(200, #"{"id":9}"#)])
        #expect(try await lab.client.runner(id: 9).id == 9)
        #expect(lab.server.requests.count == 2)
    }
}

@Suite struct GitLabLoggingTests {
    /// Every line the client logs, at every level, across successes, retries and failures: never a token.
    @Test func noLogLineHoldsAToken() async throws {
        let capture = LogCapture()
        var logger = Logger(label: "test") { _ in capture.handler() }
        logger.logLevel = .trace
        let lab = try Harness(retry: retrying, logger: logger) { request in
            switch request.path {
            case "/api/v4/user/runners": created
            case "/api/v4/runners/verify": .json(200, #"{"id":9171,"token":"\#(runnerToken)","token_expires_at":null}"#)
            case "/api/v4/runners/1": .json(401, #"{"message":"401 Unauthorized"}"#)
            case "/api/v4/runners/2": .json(400, #"{"message":"token \#(accessToken) and \#(runnerToken)"}"#)
            default: .empty(503)
            }
        }
        let runner = try await lab.client.createRunner(.instance, settings: .init(description: "pi"))
        _ = try await lab.client.verifyRunner(token: runner.token, systemID: "s_1")
        _ = try? await lab.client.deleteRunner(byToken: runner.token)
        _ = try? await lab.client.runner(id: 1)
        let echoed = try await #require(throws: GitLabError.self) { _ = try await lab.client.runner(id: 2) }

        let lines = capture.lines
        #expect(lines.contains { $0.contains("POST /api/v4/user/runners → 201") })
        #expect(lines.contains { $0.contains("DELETE /api/v4/runners → 503") })
        #expect(lines.contains { $0.contains("attempt 2 of 3") })
        #expect(lines.count >= 7)
        for line in lines + [echoed.description] {
            #expect(!line.contains(accessToken) && !line.contains(runnerToken), "\(line)")
            #expect(!line.lowercased().contains("private-token"), "\(line)")
        }
    }
}

final class LogCapture: Sendable {
    private let list = Mutex<[String]>([])
    var lines: [String] { list.withLock { $0 } }
    func handler() -> CapturingLogHandler { CapturingLogHandler(capture: self) }
    func append(_ line: String) { list.withLock { $0.append(line) } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        capture.append("\(event.level) \(event.message) \(merged)")
    }
}
