/// Why talking to one host failed, phrased for the admin: what happened and what to do next.
public struct SSHError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        case unreachable, timeout, hostKeyUnknown, hostKeyChanged, hostKeyPinMismatch, authentication
        case protocolError, transfer, sudo, disconnected, cancelled
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
