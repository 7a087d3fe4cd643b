import Inventory
import Logging
import ProvisionBasics
import SSHTransport

/// What happened on one host: a value, or the one-line reason it failed.
public struct HostOutcome<Value: Sendable>: Sendable {
    public var host: InventoryHost
    public var result: Result<Value, HostFailure>
}

/// A host-level failure, already phrased for the admin (the host name leads the message).
public struct HostFailure: Error, CustomStringConvertible, Sendable {
    public var host: String
    public var message: String
    public var description: String { message }

    init(host: String, error: any Error) {
        self.host = host
        let text = String(describing: error)
        message = text.hasPrefix(host + ":") ? text : "\(host): \(text)"
    }
}

/// Runs work on inventory hosts in parallel (bounded), each over its pooled connection; one host's failure
/// never stops the others.
public struct Fleet: Sendable {
    public let inventory: Inventory
    public let parallel: Int
    public let pool: ConnectionPool
    public let redactor: Redactor

    public init(inventory: Inventory, parallel: Int, logger: Logger = .silent) {
        self.inventory = inventory
        self.parallel = parallel
        self.pool = ConnectionPool(logger: logger)
        self.redactor = Redactor(secrets: inventory.secrets)
    }

    public func forEach<Value: Sendable>(
        _ hosts: [InventoryHost],
        _ body: @escaping @Sendable (InventoryHost, SSHConnection) async throws -> Value
    ) async -> [HostOutcome<Value>] {
        let pool = self.pool, redactor = self.redactor
        return await concurrentMap(hosts, limit: parallel) { host in
            do {
                let connection = try await pool.connection(for: host)
                return HostOutcome(host: host, result: .success(try await body(host, connection)))
            } catch {
                var failure = HostFailure(host: host.name, error: error)
                failure.message = redactor.redact(failure.message)
                return HostOutcome(host: host, result: .failure(failure))
            }
        }
    }

    public func close() async { await pool.closeAll() }
}
