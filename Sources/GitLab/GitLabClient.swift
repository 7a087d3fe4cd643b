import Foundation
import HTTPClient
import Logging
import ProvisionBasics

/// GitLab's REST API v4, for the calls runners and cluster connections need.
///
/// The access token goes in the PRIVATE-TOKEN header; runner and registration tokens go in request bodies, never
/// in URLs. 429 and 5xx answers, and transport failures that allow it, are retried as `retry` says. The logger gets
/// method, path and status of each attempt at debug level, never headers or bodies.
public struct GitLabClient: Sendable {
    public struct Timeouts: Sendable, Equatable {
        public var connect: Duration
        /// The whole of one attempt.
        public var request: Duration

        public init(connect: Duration = .seconds(10), request: Duration = .seconds(30)) {
            self.connect = connect
            self.request = request
        }
    }

    public let baseURL: URL
    private let token: Secret
    /// How messages name the access token, e.g. "the inventory's gitlab.token".
    private let tokenName: String
    private let http: HTTPClient
    private let retry: RetryPolicy
    private let logger: Logger
    let redactor: Redactor
    /// How the client waits between attempts; tests replace it to see the delays without waiting.
    var sleep: @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }

    /// - Parameters:
    ///   - baseURL: GitLab's address, e.g. https://gitlab.example.com (or with a relative root, …/gitlab).
    ///   - caFile: PEM file of the CA that signed GitLab's certificate; without it, the system's trust store.
    ///   - redactor: learns the token and every secret the client receives, so other log lines mask them too.
    public init(baseURL: URL, token: Secret, tokenName: String = "the GitLab token", caFile: String? = nil,
                timeouts: Timeouts = Timeouts(), retry: RetryPolicy = RetryPolicy(), logger: Logger = .silent,
                redactor: Redactor = .none) throws {
        guard let scheme = baseURL.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = baseURL.host, !host.isEmpty, baseURL.query == nil, baseURL.user == nil else {
            throw GitLabError(.invalidConfiguration, endpoint: "",
                              message: "the GitLab URL \(baseURL.displayedWithoutSecrets) is not an http(s) address "
                                  + "such as https://gitlab.example.com (no query, no user)")
        }
        self.baseURL = baseURL
        self.token = token
        self.tokenName = tokenName
        self.http = HTTPClient(configuration: .init(connectTimeout: timeouts.connect, timeout: timeouts.request,
                                                    caFile: caFile))
        self.retry = retry
        self.logger = logger
        self.redactor = redactor
        redactor.learn(token.revealed)
    }

    // MARK: Sending

    /// Sends `endpoint` with retries; returns a 2xx answer or one whose status is in `accepting`, throws otherwise.
    func send(_ endpoint: GitLabEndpoint, accepting: Set<Int> = []) async throws -> HTTPResponse {
        let request = try makeRequest(endpoint)
        let clock = ContinuousClock(), started = clock.now
        var generator = SystemRandomNumberGenerator()
        var attempt = 1
        while true {
            let attemptStarted = clock.now
            let response: HTTPResponse
            do {
                response = try await http.perform(request)
            } catch let error as HTTPClientError {
                logger.debug("GitLab \(endpoint.shown) failed after \((clock.now - attemptStarted).inMilliseconds) ms: \(error.kind.rawValue)")
                let resend = endpoint.repeatable || !error.requestMayHaveBeenSent
                let retryable = resend && [.timeout, .connectionFailed, .connectionLost].contains(error.kind)
                if retryable, let delay = nextDelay(after: attempt, retryAfter: nil, since: started, &generator) {
                    try await wait(delay, endpoint, attempt, reason: error.kind.rawValue)
                    attempt += 1
                    continue
                }
                throw transportFailure(error, endpoint, attempts: attempt, since: started)
            }
            let status = response.status
            logger.debug("GitLab \(endpoint.shown) → \(status) in \((clock.now - attemptStarted).inMilliseconds) ms")
            if (200..<300).contains(status) || accepting.contains(status) { return response }
            if status == 504 && !endpoint.repeatable {
                throw outcomeUnknown(endpoint, "GitLab's proxy gave up waiting for it (504 Gateway Timeout)")
            }
            if status == 429 || (500..<600).contains(status) {
                let retryAfter = response.headers["Retry-After"].flatMap { RetryAfter.parse($0) }
                if let delay = nextDelay(after: attempt, retryAfter: retryAfter, since: started, &generator) {
                    try await wait(delay, endpoint, attempt, reason: String(status))
                    attempt += 1
                    continue
                }
            }
            throw failure(response, endpoint, attempts: attempt, since: started)
        }
    }

    /// The wait before the next attempt, or nil when the attempts or the time are used up.
    private func nextDelay(after attempt: Int, retryAfter: Duration?, since started: ContinuousClock.Instant,
                           _ generator: inout SystemRandomNumberGenerator) -> Duration? {
        guard attempt < retry.maxAttempts else { return nil }
        let delay = retry.delay(afterAttempt: attempt, retryAfter: retryAfter, using: &generator)
        return ContinuousClock.now - started + delay <= retry.maxTotal ? delay : nil
    }

    private func wait(_ delay: Duration, _ endpoint: GitLabEndpoint, _ attempt: Int, reason: String) async throws {
        logger.debug("GitLab \(endpoint.shown): \(reason); attempt \(attempt + 1) of \(retry.maxAttempts) in \(delay.inMilliseconds) ms")
        try await sleep(delay)
    }

    private func makeRequest(_ endpoint: GitLabEndpoint) throws -> HTTPRequest {
        var text = baseURL.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        text += "/api/v4" + endpoint.path
        if !endpoint.query.isEmpty { text += "?" + GitLabEndpoint.formEncoded(endpoint.query) }
        guard let url = URL(string: text) else {
            throw GitLabError(.invalidConfiguration, endpoint: endpoint.shown, message: "cannot build a URL for \(endpoint.shown)")
        }
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if case .accessToken = endpoint.credential { headers.add("PRIVATE-TOKEN", token.revealed) }
        var body: Data?
        switch endpoint.body {
        case .none: break
        case .json(let data):
            headers.add("Content-Type", "application/json")
            body = data
        case .form(let fields):
            headers.add("Content-Type", "application/x-www-form-urlencoded")
            body = Data(GitLabEndpoint.formEncoded(fields).utf8)
        }
        return HTTPRequest(method: endpoint.method, url: url, headers: headers, body: body)
    }

    // MARK: Bodies

    func json(_ value: some Encodable, for endpoint: String) throws -> GitLabEndpoint.Body {
        do {
            return .json(try GitLabJSON.encoder.encode(value))
        } catch {
            throw GitLabError(.invalidConfiguration, endpoint: endpoint, message: "cannot encode the request for \(endpoint): \(error)")
        }
    }

    func decode<T: Decodable>(_ type: T.Type, from response: HTTPResponse, of endpoint: GitLabEndpoint) throws -> T {
        do {
            return try GitLabJSON.decoder.decode(type, from: response.body)
        } catch {
            throw GitLabError(.invalidResponse, status: response.status, endpoint: endpoint.shown,
                              message: "GitLab's answer to \(endpoint.shown) is not what provision expects "
                                  + "(\(GitLabJSON.summary(of: error))); is \(baseURL.displayedWithoutSecrets) a GitLab of version 16 or later?")
        }
    }

    /// Every page of a list, following x-next-page; 100 items a page.
    func allPages<T: Decodable>(_ endpoint: GitLabEndpoint, of type: T.Type) async throws -> [T] {
        var items: [T] = []
        var page = "1"
        var seen: Set<String> = [page]
        while true {
            var paged = endpoint
            paged.query += [("per_page", "100"), ("page", page)]
            let response = try await send(paged)
            items += try decode([T].self, from: response, of: paged)
            let next = response.headers["x-next-page"]?.trimmingCharacters(in: .whitespaces) ?? ""
            if next.isEmpty { return items }
            guard seen.insert(next).inserted else {
                throw GitLabError(.invalidResponse, status: response.status, endpoint: endpoint.shown,
                                  message: "GitLab's pages for \(endpoint.shown) go round in a circle (page \(next) again)")
            }
            page = next
        }
    }

    // MARK: Errors

    func failure(_ response: HTTPResponse, _ endpoint: GitLabEndpoint, attempts: Int,
                         since started: ContinuousClock.Instant) -> GitLabError {
        let status = response.status
        let said = GitLabJSON.errorBody(response.body)
        let gitlabSays = said.text.map { ": GitLab says \(clip($0))" } ?? ""
        let call = endpoint.shown
        func error(_ kind: GitLabError.Kind, _ message: String) -> GitLabError {
            GitLabError(kind, status: status, endpoint: call, message: redactor.redact(message))
        }
        let tried = attempts > 1 ? " after \(attempts) attempts over \(Self.seconds(ContinuousClock.now - started))" : ""
        switch status {
        case 401:
            return error(.unauthorized, "GitLab rejected \(tokenName) (401 Unauthorized) for \(call): it is wrong, "
                + "expired or revoked; create a new one and update the inventory")
        case 403:
            switch endpoint.credential {
            case .accessToken(let scope) where said.error == "insufficient_scope":
                return error(.insufficientScope, "\(capitalized(tokenName)) lacks the `\(scope)` scope needed for \(call) "
                    + "(403 insufficient_scope): give it that scope or create a token that has it")
            case .accessToken:
                let who = endpoint.role.map { "; this needs \($0)" } ?? ""
                return error(.forbidden, "GitLab refused \(call) to \(tokenName) (403 Forbidden)\(who)\(gitlabSays)")
            case .runnerToken:
                return error(.forbidden, "GitLab does not know this runner token (403 Forbidden) for \(call): "
                    + "the runner was deleted or the token is wrong")
            case .registrationToken:
                return error(.forbidden, "GitLab rejected the registration token (403 Forbidden) for \(call): it is "
                    + "wrong or was reset; create the runner with an access token instead (POST /api/v4/user/runners)")
            }
        case 404:
            return error(.notFound, "GitLab found nothing at \(call) (404 Not Found)\(gitlabSays); check the id or path, "
                + "and that \(tokenName)'s user can see it")
        case 410 where endpoint.credential == .registrationToken:
            return error(.registrationTokensDisabled, "registration tokens are disabled on this GitLab (since 17.0); "
                + "create the runner with an access token instead (410 Gone for \(call))")
        case 400, 409, 422:
            return error(.rejected, "GitLab refused \(call) (\(status) \(Self.reason(status)))\(gitlabSays)")
        case 429:
            return error(.rateLimited, "GitLab kept answering 429 Too Many Requests for \(call)\(tried): wait a while "
                + "and run again, or allow more retries")
        case 500..<600:
            return error(.serverError, "GitLab answered \(status) \(Self.reason(status)) for \(call)\(tried): it may be "
                + "down, restarting or overloaded; try again later")
        default:
            return error(.unexpectedStatus, "GitLab answered \(status) \(Self.reason(status)) for \(call)\(gitlabSays)")
        }
    }

    private func transportFailure(_ error: HTTPClientError, _ endpoint: GitLabEndpoint, attempts: Int,
                                  since started: ContinuousClock.Instant) -> GitLabError {
        if !endpoint.repeatable, error.requestMayHaveBeenSent, [.timeout, .connectionLost].contains(error.kind) {
            return outcomeUnknown(endpoint, error.description)
        }
        let tried = attempts > 1 ? " (after \(attempts) attempts over \(Self.seconds(ContinuousClock.now - started)))" : ""
        let hint = switch error.kind {
        case .tls: "; if GitLab's certificate is signed by your own CA, set gitlab.caFile in the inventory to that CA's PEM file"
        case .nameResolution, .connectionFailed: "; check the GitLab URL and that GitLab is up"
        case .timeout: "; GitLab did not answer in time: check that it is up, or raise the GitLab timeouts"
        default: ""
        }
        return GitLabError(.transport, endpoint: endpoint.shown, message: redactor.redact("cannot reach GitLab: \(error)\(tried)\(hint)"))
    }

    private func outcomeUnknown(_ endpoint: GitLabEndpoint, _ what: String) -> GitLabError {
        let thing = endpoint.creates ?? "it"
        return GitLabError(.outcomeUnknown, endpoint: endpoint.shown, message: redactor.redact(
            "\(endpoint.shown) failed after it was sent (\(what)); GitLab may have created \(thing) all the same, so it "
                + "was not sent again: look in GitLab for \(thing), delete a duplicate if there is one, and run again"))
    }

    private func capitalized(_ text: String) -> String { text.prefix(1).uppercased() + text.dropFirst() }

    private func clip(_ text: String) -> String { text.count > 400 ? String(text.prefix(400)) + "…" : text }

    private static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 409: "Conflict"
        case 412: "Precondition Failed"
        case 413: "Payload Too Large"
        case 422: "Unprocessable Entity"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: "HTTP \(status)"
        }
    }
}
