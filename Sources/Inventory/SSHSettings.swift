/// What to do with a host key that is not yet in known_hosts.
public enum HostKeyPolicy: String, Sendable, Codable, CaseIterable {
    /// Refuse unknown and changed keys alike.
    case strict
    /// Record an unknown key on first contact (trust on first use); still refuse a changed key.
    case acceptNew = "accept-new"
}

/// How to reach one host over SSH: the top-level `ssh` defaults with the host's own `ssh` block merged over them,
/// every default applied and every path absolute.
public struct SSHSettings: Sendable, Equatable {
    public var user: String
    public var port: Int
    public var keyPath: String?
    public var keyPassphrase: String?
    public var password: String?
    /// Try keys from ssh-agent (`SSH_AUTH_SOCK`).
    public var useAgent: Bool
    public var knownHosts: String
    public var hostKeyPolicy: HostKeyPolicy
    /// `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it; when set, the host key must match it.
    public var hostKeyFingerprint: String?
    public var sudoPassword: String?
    /// Seconds to wait for the TCP connection and SSH handshake.
    public var connectTimeout: Double
    /// Seconds between keepalive messages; 0 turns them off.
    public var keepalive: Int

    public init(user: String = SSHSettings.defaultUser,
                port: Int = SSHSettings.defaultPort,
                keyPath: String? = nil,
                keyPassphrase: String? = nil,
                password: String? = nil,
                useAgent: Bool,
                knownHosts: String,
                hostKeyPolicy: HostKeyPolicy = .strict,
                hostKeyFingerprint: String? = nil,
                sudoPassword: String? = nil,
                connectTimeout: Double = SSHSettings.defaultConnectTimeout,
                keepalive: Int = SSHSettings.defaultKeepalive) {
        self.user = user
        self.port = port
        self.keyPath = keyPath
        self.keyPassphrase = keyPassphrase
        self.password = password
        self.useAgent = useAgent
        self.knownHosts = knownHosts
        self.hostKeyPolicy = hostKeyPolicy
        self.hostKeyFingerprint = hostKeyFingerprint
        self.sudoPassword = sudoPassword
        self.connectTimeout = connectTimeout
        self.keepalive = keepalive
    }

    public static let defaultUser = "root"
    public static let defaultPort = 22
    /// Relative to `$HOME`.
    public static let defaultKnownHosts = "~/.ssh/known_hosts"
    public static let defaultConnectTimeout: Double = 10
    public static let defaultKeepalive = 30
}
