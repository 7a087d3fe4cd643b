import Facts
import Inventory
import ProvisionBasics
import SSHTransport
import Steps

/// The one round trip that reads a host: the facts script, then the probe of every step that concerns the host (by
/// its roles), each in its own section. A round after the first passes on what the last one found (`known`), so the
/// facts script does not ask an unchanged program for its version again.
enum ProbeRound {
    static let marker = "@@provision-probe "

    static func script(for host: InventoryHost, steps: [any Step], known: [String: ProgramVersion] = [:]) -> String {
        var parts = ["(\n\(FactsProbe.script(knowing: known))\n)"]
        for step in steps where step.concerns(host) {
            // A subshell keeps one probe's variables and `set --` away from the next.
            parts.append("printf '\\n\(marker)%s\\n' \(ShellQuote.quote(step.id)); (\n\(step.probe(for: host))\n) 2>&1")
        }
        return parts.joined(separator: "\n")
    }

    static func parse(_ output: String) throws -> (HostFacts, [String: String]) {
        var sections: [String: [Substring]] = [:]
        var current = ""
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(marker) {
                current = String(line.dropFirst(marker.count))
                sections[current] = []
            } else {
                sections[current, default: []].append(line)
            }
        }
        let facts = try FactsProbe.parse((sections[""] ?? []).joined(separator: "\n"))
        var probes: [String: String] = [:]
        for (id, lines) in sections where !id.isEmpty {
            var body = lines
            while body.last == "" { body.removeLast() }
            probes[id] = body.joined(separator: "\n")
        }
        return (facts, probes)
    }

    /// Runs the round on `connection` (as root) and parses it.
    static func run(on connection: SSHConnection, host: InventoryHost, steps: [any Step],
                    known: [String: ProgramVersion] = [:]) async throws -> (HostFacts, [String: String]) {
        let result = try await connection.run(script(for: host, steps: steps, known: known), privileged: true)
        return try read(stdout: result.stdoutText, stderr: result.stderrText, status: result, host: host)
    }

    /// Parses the round's output, or fails with its status and the end of its stderr.
    static func read(stdout: String, stderr: String, status: CommandResult,
                     host: InventoryHost) throws -> (HostFacts, [String: String]) {
        guard status.succeeded else {
            throw SSHError(.protocolError, "\(host.name): reading the host failed (\(status.statusDescription)): \(stderr.suffix(400))")
        }
        return try parse(stdout)
    }
}
