/// One `ssh` block as written: the top-level defaults or a host's overrides. Unset keys are nil.
struct SSHBlock {
    var user: String?
    var port: Int?
    var keyPath: String?
    var keyPassphrase: String?
    var password: String?
    var agent: Bool?
    var knownHosts: String?
    var hostKeyPolicy: HostKeyPolicy?
    var hostKeyFingerprint: String?
    var sudoPassword: String?
    var connectTimeout: Double?
    var keepalive: Int?
    /// Keys set to null in a host's block, so that the host does not inherit the default (say, a keyPath).
    var cleared: Set<String> = []

    static let keys = ["user", "port", "keyPath", "keyPassphrase", "password", "agent", "knownHosts",
                       "hostKeyPolicy", "hostKeyFingerprint", "sudoPassword", "connectTimeout", "keepalive"]
    /// The optional keys, which a host may clear with null.
    static let clearableKeys: Set<String> = ["keyPath", "keyPassphrase", "password", "hostKeyFingerprint",
                                             "sudoPassword"]

    /// These defaults with a host's block merged over them, key by key.
    func overridden(by host: SSHBlock) -> SSHBlock {
        func pick<Value>(_ key: String, _ field: KeyPath<SSHBlock, Value?>) -> Value? {
            host[keyPath: field] ?? (host.cleared.contains(key) ? nil : self[keyPath: field])
        }
        return SSHBlock(user: pick("user", \.user), port: pick("port", \.port),
                        keyPath: pick("keyPath", \.keyPath), keyPassphrase: pick("keyPassphrase", \.keyPassphrase),
                        password: pick("password", \.password), agent: pick("agent", \.agent),
                        knownHosts: pick("knownHosts", \.knownHosts),
                        hostKeyPolicy: pick("hostKeyPolicy", \.hostKeyPolicy),
                        hostKeyFingerprint: pick("hostKeyFingerprint", \.hostKeyFingerprint),
                        sudoPassword: pick("sudoPassword", \.sudoPassword),
                        connectTimeout: pick("connectTimeout", \.connectTimeout),
                        keepalive: pick("keepalive", \.keepalive))
    }

    /// The settings with every default applied; `defaultKnownHosts` is already absolute.
    func resolved(defaultKnownHosts: String) -> SSHSettings {
        SSHSettings(user: user ?? SSHSettings.defaultUser,
                    port: port ?? SSHSettings.defaultPort,
                    keyPath: keyPath,
                    keyPassphrase: keyPassphrase,
                    password: password,
                    // With no key and no password the agent is the only way in; otherwise it is opt-in.
                    useAgent: agent ?? (keyPath == nil && password == nil),
                    knownHosts: knownHosts ?? defaultKnownHosts,
                    hostKeyPolicy: hostKeyPolicy ?? .strict,
                    hostKeyFingerprint: hostKeyFingerprint,
                    sudoPassword: sudoPassword,
                    connectTimeout: connectTimeout ?? SSHSettings.defaultConnectTimeout,
                    keepalive: keepalive ?? SSHSettings.defaultKeepalive)
    }
}
