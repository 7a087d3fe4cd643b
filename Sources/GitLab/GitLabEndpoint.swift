import Foundation
import HTTPClient

/// One call of the API as the client needs to know it: where, how it authenticates, what it needs, whether it may be
/// sent twice.
struct GitLabEndpoint: Sendable {
    enum Credential: Sendable, Equatable {
        /// The client's access token, which needs this scope.
        case accessToken(scope: String)
        /// A runner authentication token in the body (verify, unregister).
        case runnerToken
        /// A legacy registration token in the body.
        case registrationToken
    }

    enum Body: Sendable {
        case none
        case json(Data)
        case form([(String, String)])
    }

    var method: HTTPMethod
    /// Below /api/v4, path segments already percent-encoded.
    var path: String
    var query: [(String, String)] = []
    var credential: Credential
    /// Who may make this call, for a 403: "the Maintainer role on project 42".
    var role: String?
    /// What the call creates ("a runner"): such a call is not sent again once it may have reached GitLab.
    var creates: String?
    var body: Body = .none

    /// Sending it twice does no more than sending it once.
    var repeatable: Bool { creates == nil }

    var shown: String { "\(method.rawValue) /api/v4\(path)" }

    /// `value` as one path segment: everything but unreserved characters percent-encoded ("group/project" too).
    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    static func segment(_ value: Int) -> String { String(value) }

    static func formEncoded(_ fields: [(String, String)]) -> String {
        fields.map { "\(segment($0.0))=\(segment($0.1))" }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn:
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
}
