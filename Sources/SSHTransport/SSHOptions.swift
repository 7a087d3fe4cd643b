/// Where to connect and how to prove who we are and who they are. Built by the engine from the inventory.
public struct SSHOptions: Sendable {
    public enum Authentication: Sendable {
        case agent
        case keyFile(path: String, passphrase: String?)
        case password(String)
    }

    public enum HostKeyPolicy: String, Sendable {
        /// Unknown or changed keys are refused.
        case strict
        /// Unknown keys are recorded in known_hosts; changed keys are still refused.
        case acceptNew = "accept-new"
    }

    /// A name for messages (the inventory host name).
    public var name: String
    public var address: String
    public var port: Int
    public var user: String
    /// Tried in order until one succeeds.
    public var authentication: [Authentication]
    public var knownHostsPath: String
    public var hostKeyPolicy: HostKeyPolicy
    /// `SHA256:<base64>`; when set, it alone decides whether the host key is accepted.
    public var pinnedFingerprint: String?
    /// For non-root users: the sudo password, sent on stdin.
    public var sudoPassword: String?
    public var connectTimeout: Double
    /// Seconds between keepalive messages; 0 turns them off.
    public var keepalive: Int

    public init(name: String, address: String, port: Int = 22, user: String = "root",
                authentication: [Authentication], knownHostsPath: String, hostKeyPolicy: HostKeyPolicy = .strict,
                pinnedFingerprint: String? = nil, sudoPassword: String? = nil,
                connectTimeout: Double = 10, keepalive: Int = 30) {
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.authentication = authentication
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.pinnedFingerprint = pinnedFingerprint
        self.sudoPassword = sudoPassword
        self.connectTimeout = connectTimeout
        self.keepalive = keepalive
    }

    /// `address:port`, with brackets for IPv6.
    public var endpoint: String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// Every secret these options carry, for redaction.
    public var secrets: [String] {
        var all: [String] = sudoPassword.map { [$0] } ?? []
        for method in authentication {
            switch method {
            case .agent: break
            case .keyFile(_, let passphrase): if let passphrase { all.append(passphrase) }
            case .password(let password): all.append(password)
            }
        }
        return all
    }
}
