/// A request that got no HTTP response: what went wrong, on which URL (shown without its query), in curl's words.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case invalidRequest, nameResolution, connectionFailed, tls, timeout, connectionLost, responseTooLarge, other
    }

    public var kind: Kind
    public var method: HTTPMethod
    /// The URL without user, password, query or fragment.
    public var url: String
    public var message: String
    /// Whether the request may have reached the server (the connection was up when it failed), so a non-repeatable
    /// request may have taken effect.
    public var requestMayHaveBeenSent: Bool

    public init(_ kind: Kind, method: HTTPMethod, url: String, message: String, requestMayHaveBeenSent: Bool) {
        self.kind = kind
        self.method = method
        self.url = url
        self.message = message
        self.requestMayHaveBeenSent = requestMayHaveBeenSent
    }

    public var description: String { "\(method.rawValue) \(url) failed: \(message)" }
}
