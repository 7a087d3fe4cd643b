import Inventory
import Logging
import ProvisionBasics
import SSHTransport

/// One SSH connection per inventory host for the whole run, opened on first use.
public actor ConnectionPool {
    private var connections: [String: SSHConnection] = [:]
    private var pending: [String: Task<SSHConnection, Error>] = [:]
    private let logger: Logger

    public init(logger: Logger = .silent) {
        self.logger = logger
    }

    /// The host's connection, connecting when needed; concurrent callers share one attempt.
    public func connection(for host: InventoryHost) async throws -> SSHConnection {
        if let existing = connections[host.name] { return existing }
        if let task = pending[host.name] { return try await task.value }
        let options = SSHOptions(host: host)
        let logger = self.logger
        let task = Task { try await SSHConnection.connect(options, logger: logger) }
        pending[host.name] = task
        defer { pending[host.name] = nil }
        let connection = try await task.value
        connections[host.name] = connection
        if connection.hostKeyDecision.hasPrefix("recorded") {
            logger.notice("host key \(connection.hostKeyFingerprint) \(connection.hostKeyDecision)",
                          metadata: ["host": "\(host.name)"])
        }
        return connection
    }

    /// Every connection opened so far, by host name.
    public var openConnections: [String: SSHConnection] { connections }

    /// Closes and forgets a host's connection (it is rebooting); the next use connects again.
    public func drop(_ name: String) async {
        if let connection = connections.removeValue(forKey: name) { await connection.close() }
    }

    public func closeAll() async {
        for connection in connections.values { await connection.close() }
        connections.removeAll()
    }
}

extension SSHOptions {
    /// The transport's view of an inventory host.
    public init(host: InventoryHost) {
        let ssh = host.ssh
        var methods: [Authentication] = []
        if let keyPath = ssh.keyPath { methods.append(.keyFile(path: keyPath, passphrase: ssh.keyPassphrase)) }
        if ssh.useAgent { methods.append(.agent) }
        if let password = ssh.password { methods.append(.password(password)) }
        self.init(name: host.name, address: host.address, port: ssh.port, user: ssh.user,
                  authentication: methods, knownHostsPath: ssh.knownHosts,
                  hostKeyPolicy: ssh.hostKeyPolicy == .acceptNew ? .acceptNew : .strict,
                  pinnedFingerprint: ssh.hostKeyFingerprint, sudoPassword: ssh.sudoPassword,
                  connectTimeout: ssh.connectTimeout, keepalive: ssh.keepalive)
    }
}
