import Foundation

/// The fake GitLab that `scripts/lab up` runs in the services namespace (scripts/lab.d/gitlab, seeded at every up) and
/// the mirror of GitLab's gitlab-runner apt repository. docs/lab.md ("The fake GitLab", "The gitlab-runner
/// repository") describes both. Calls go through curl with its options on stdin, so no token is ever on a command line.
extension Lab {
    /// http://10.250.K.9:8929, the fake GitLab's base URL (API below `/api/v4`, test controls below `/-/fake`).
    public var gitlabURL: String { environmentValue("LAB_GITLAB_URL") }
    /// https://10.250.K.9:8943: the same fake over HTTPS, with a certificate for 10.250.K.9 from the lab's CA.
    public var gitlabHTTPSURL: String { environmentValue("LAB_GITLAB_HTTPS_URL") }
    /// DIR/ca.crt, the lab's CA certificate (PEM): what `gitlab.caFile` or `--tls-ca-file` needs for `gitlabHTTPSURL`.
    public var caCertificatePath: String { environmentValue("LAB_CA_CERT") }
    /// The gitlab-runner repository's base URL, http://10.250.K.9:8080/runner/gitlab-runner, laid out as
    /// https://packages.gitlab.com/runner/gitlab-runner: `/gpgkey`, and the apt suite below `/debian`.
    public var runnerRepositoryURL: String { environmentValue("LAB_RUNNER_REPO") }
    /// DIR/gitlab-tokens (0600): `NAME=TOKEN` lines of the seed's tokens, and `registration-token=...`.
    public var gitlabTokensPath: String { environmentValue("LAB_GITLAB_TOKENS") }

    /// A token of the fake's seed by name: root-api, owner-create-runner, project-bot, ... (scripts/lab.d/gitlab/
    /// README.md lists them), or `registration-token`.
    public func gitlabToken(_ name: String) throws -> String {
        let text = try String(contentsOfFile: gitlabTokensPath, encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix(name + "=") {
            return String(line.dropFirst(name.count + 1))
        }
        throw LabError.malformed(path: gitlabTokensPath, line: "no token named \(name)")
    }

    /// An API call below /api/v4 as the seed token `token` (by name, sent as PRIVATE-TOKEN), with a form body
    /// (`key=value` items, url-encoded) or a JSON body.
    public func gitlabAPI(_ method: String, _ path: String, token: String? = nil, form: [String] = [],
                          json: String? = nil) throws -> GitLabReply {
        var config = [curlOption("url", gitlabURL + "/api/v4" + path), curlOption("request", method)]
        if let token { config.append(curlOption("header", "PRIVATE-TOKEN: " + (try gitlabToken(token)))) }
        config += form.map { curlOption("data-urlencode", $0) }
        if let json { config += [curlOption("header", "Content-Type: application/json"), curlOption("data-binary", json)] }
        return try curl(config)
    }

    /// A test control of the fake, below /-/fake (e.g. `("POST", "/faults", json: ...)`).
    public func gitlabControl(_ method: String, _ path: String, json: String? = nil) throws -> GitLabReply {
        var config = [curlOption("url", gitlabURL + "/-/fake" + path), curlOption("request", method)]
        if let json { config.append(curlOption("data-binary", json)) }
        return try curl(config)
    }

    /// Creates a runner as GitLab's UI or `POST /api/v4/user/runners` does (default: a project runner of project 200,
    /// created by the group owner) and returns its id and its glrt- token, which GitLab shows only this once.
    public func createGitLabRunner(token: String = "owner-create-runner",
                                   form: [String] = ["runner_type=project_type", "project_id=200"]) throws -> (id: Int, token: String) {
        let reply = try gitlabAPI("POST", "/user/runners", token: token, form: form)
        let fields = try reply.object()
        guard reply.status == 201, let id = fields["id"] as? Int, let glrt = fields["token"] as? String else {
            throw LabError.malformed(path: "POST /api/v4/user/runners", line: "\(reply.status) \(reply.body)")
        }
        return (id, glrt)
    }

    /// The fake's state as GET /-/fake/state returns it: `runners` (with `status`, `managers`, ...), `variables`,
    /// `agents`, `counts`. Tokens and variable values only with `secrets`.
    public func gitlabState(secrets: Bool = false) throws -> [String: Any] {
        try gitlabControl("GET", "/state" + (secrets ? "?secrets=1" : "")).object()
    }

    /// One runner of `gitlabState()` by id, or nil if GitLab has no such runner.
    public func gitlabRunner(id: Int) throws -> [String: Any]? {
        let runners = try gitlabState()["runners"] as? [[String: Any]] ?? []
        return runners.first { $0["id"] as? Int == id }
    }

    /// Polls the fake until runner `id` has `status` (online, offline, never_contacted, stale, paused), for at most
    /// `timeout` seconds. Returns the runner as last seen (nil when it is gone), whether or not it got there.
    @discardableResult
    public func waitForGitLabRunner(id: Int, status: String = "online", timeout: Double = 10) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(timeout)
        var runner = try gitlabRunner(id: id)
        while (runner?["status"] as? String) != status && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            runner = try gitlabRunner(id: id)
        }
        return runner
    }

    /// An admin deletes the runner (DELETE /api/v4/runners/:id as root): its token is refused from then on (403).
    public func deleteGitLabRunner(id: Int) throws {
        let reply = try gitlabAPI("DELETE", "/runners/\(id)", token: "root-api")
        guard reply.status == 204 else {
            throw LabError.malformed(path: "DELETE /api/v4/runners/\(id)", line: "\(reply.status) \(reply.body)")
        }
    }

    /// Makes the next `count` calls matching `method` and `path` (a glob such as `/api/v4/jobs/request`) fail with
    /// `status` (and, optionally, wait `latency` seconds first). `clearGitLabFaults()` removes every pending rule.
    public func injectGitLabFault(method: String = "*", path: String, status: Int, count: Int = 1,
                                  latency: Double = 0) throws {
        let json = #"{"method":"\#(method)","path":"\#(path)","status":\#(status),"count":\#(count),"latency":\#(latency)}"#
        let reply = try gitlabControl("POST", "/faults", json: json)
        guard reply.status == 201 else { throw LabError.malformed(path: "POST /-/fake/faults", line: reply.body) }
    }

    public func clearGitLabFaults() throws {
        _ = try gitlabControl("DELETE", "/faults")
    }

    /// The fake's request log (/api/v4 calls, without secrets): method, path, status, auth, user, fault, ...
    public func gitlabLog() throws -> [[String: Any]] {
        try gitlabControl("GET", "/log").object()["entries"] as? [[String: Any]] ?? []
    }

    private func curlOption(_ name: String, _ value: String) -> String { Curl.option(name, value) }

    private func curl(_ config: [String]) throws -> GitLabReply { try Curl.perform(config) }
}

/// curl with its options on stdin (`--config -`), so no token is ever on a command line.
public enum Curl {
    /// One line of a curl config file, the value quoted.
    public static func option(_ name: String, _ value: String) -> String {
        name + " = \"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Runs curl with `config` and splits its answer into status, headers and body.
    public static func perform(_ config: [String]) throws -> GitLabReply {
        let result = try run("curl", ["--silent", "--show-error", "--include", "--config", "-"],
                             stdin: config.joined(separator: "\n") + "\n")
        guard result.status == 0 else { throw LabError.commandFailed(command: "curl", output: result) }
        // --include puts every header block first (a 100 Continue included); the last one is the answer's.
        var rest = Substring(result.stdout)
        var head = Substring("")
        while rest.hasPrefix("HTTP/"), let end = rest.range(of: "\r\n\r\n") {
            head = rest[..<end.lowerBound]
            rest = rest[end.upperBound...]
        }
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return GitLabReply(status: status, headers: headers, body: String(rest))
    }
}

/// An answer of the fake GitLab: status, headers (lower-case names) and body.
public struct GitLabReply: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: String

    public init(status: Int, headers: [String: String], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body as a JSON object; throws if it is not one.
    public func object() throws -> [String: Any] {
        guard let value = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw LabError.malformed(path: "GitLab reply \(status)", line: body)
        }
        return value
    }

    /// The body as a JSON array of objects; throws if it is not one.
    public func array() throws -> [[String: Any]] {
        guard let value = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else {
            throw LabError.malformed(path: "GitLab reply \(status)", line: body)
        }
        return value
    }
}
