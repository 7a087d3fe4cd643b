/// Why a GitLab call failed, phrased for the admin: which call, what GitLab said, and what to do next.
/// Never holds a token: messages pass through the client's redactor, which knows every secret it handled.
public struct GitLabError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// 401: the access token is wrong, expired or revoked.
        case unauthorized
        /// 403 insufficient_scope: the token lacks the scope the call needs.
        case insufficientScope
        /// 403 otherwise: the token's user lacks the role (or the runner or registration token is not valid).
        case forbidden
        case notFound
        /// 410 on legacy registration: registration tokens are disabled.
        case registrationTokensDisabled
        /// 400, 409, 422: GitLab refused the request as given.
        case rejected
        /// 429 beyond the retries.
        case rateLimited
        /// 5xx beyond the retries.
        case serverError
        case unexpectedStatus
        /// No HTTP answer: refused, DNS, TLS, timeout.
        case transport
        /// A call that creates something failed after it was sent: GitLab may have done it.
        case outcomeUnknown
        /// An answer provision cannot read.
        case invalidResponse
        /// The client was set up wrongly (base URL).
        case invalidConfiguration
    }

    public var kind: Kind
    /// The HTTP status, when GitLab answered.
    public var status: Int?
    /// Method and path of the call, e.g. `POST /api/v4/user/runners`; no query, no secrets.
    public var endpoint: String
    public var message: String

    public init(_ kind: Kind, status: Int? = nil, endpoint: String, message: String) {
        self.kind = kind
        self.status = status
        self.endpoint = endpoint
        self.message = message
    }

    public var description: String { message }
}
