import ArgumentParser
import Engine
import Foundation
import Inventory
import ProvisionBasics
import SSHTransport

/// `provision exec INVENTORY -- CMD`: one command on many hosts, output prefixed by host.
struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command on hosts in parallel; each output line is prefixed by the host name.",
        discussion: "The words after -- are joined with spaces and run by the login shell, as ssh does.")

    @OptionGroup var options: HostOptions


    @Flag(help: "Run as root (through sudo for non-root logins).")
    var sudo = false

    @Option(help: "Give up on a host's command after this many seconds.")
    var timeout: Double?

    @Argument(parsing: .postTerminator, help: "The command to run.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("give the command after --, e.g. provision exec inventory.yaml -- uptime") }
    }

    func run() async throws {
        let inventory = try options.loadInventory()
        let selected = try options.selectedHosts(in: inventory)
        let line = command.joined(separator: " ")
        let sudo = self.sudo, timeout = self.timeout
        let width = selected.map(\.name.count).max() ?? 0
        let fleet = Fleet(inventory: inventory, parallel: options.parallel, logger: options.logger(redacting: inventory))
        let outcomes = await fleet.forEach(selected) { host, connection in
            let result = try await connection.run(line, privileged: sudo, timeout: timeout)
            Self.printPrefixed(result, host: host.name, width: width, redactor: fleet.redactor)
            return result
        }
        await fleet.close()
        var failed = false
        for outcome in outcomes {
            switch outcome.result {
            case .failure(let failure):
                Console.error(failure.message)
                failed = true
            case .success(let result) where !result.succeeded:
                Console.error("\(outcome.host.name): \(result.statusDescription)")
                failed = true
            case .success:
                break
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func printPrefixed(_ result: CommandResult, host: String, width: Int, redactor: Redactor) {
        let prefix = host.padding(toLength: width, withPad: " ", startingAt: 0) + " | "
        func lines(_ text: String) -> [String] {
            var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if parts.last == "" { parts.removeLast() }
            return parts
        }
        let out = lines(redactor.redact(result.stdoutText)).map { prefix + $0 + "\n" }.joined()
        if !out.isEmpty { Console.out(out) }
        for line in lines(redactor.redact(result.stderrText)) { Console.error(prefix + line) }
    }
}
