import Facts
import SSHTransport

extension FactsProbe {
    /// Gathers facts in one command on an open connection.
    public static func gather(on connection: SSHConnection) async throws -> HostFacts {
        let result = try await connection.run(script)
        guard result.succeeded else {
            throw SSHError(.protocolError, "\(connection.options.name): facts script failed (\(result.statusDescription)): \(result.stderrText)")
        }
        return try parse(result.stdoutText)
    }
}
