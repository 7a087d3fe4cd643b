import ArgumentParser
import Engine
import Foundation
import Journal
import ProvisionBasics

/// `provision reset INVENTORY`: k3s off the named hosts (every k3s host by default), after a confirmation.
struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Remove k3s from hosts: drain and delete their nodes, run the k3s uninstall script, forget their steps.",
        discussion: "Agents go first, then joining servers, the first server last, and the first server only with "
            + "every other k3s host; when the whole cluster goes, the service account's kubeconfig variable is "
            + "deleted in GitLab too. It asks \"Type 'yes'\" on a terminal; without a terminal it needs --yes. "
            + "Exit 0 when every named host was reset, 1 otherwise.")

    @OptionGroup var options: HostOptions

    @Flag(help: "Do not ask for confirmation (needed when stdin is not a terminal).")
    var yes = false

    func run() async throws {
        let inventory = try options.loadInventory()
        _ = try options.selectedHosts(in: inventory)
        let plan: ResetPlan
        do {
            plan = try ResetPlan(inventory: inventory, names: options.hosts)
        } catch {
            Console.error(error.description)
            throw ExitCode(1)
        }
        let count = plan.entries.count
        guard yes || isatty(STDIN_FILENO) == 1 else {
            Console.error("refusing to remove k3s from \(count) host(s) (\(plan.entries.map(\.host.name).joined(separator: ", "))) "
                + "without confirmation: stdin is not a terminal; add --yes to remove it without asking")
            throw ExitCode(1)
        }
        let lock: RunLock
        do {
            lock = try RunLock.acquire(path: JournalLocation.lock(forInventory: inventory.path), command: "provision reset")
        } catch let error as RunLockError {
            Console.error(error.description)
            throw ExitCode(1)
        }
        defer { lock.release() }
        Console.errorRaw(plan.summary)
        if !yes {
            Console.errorRaw("Type 'yes' to remove k3s from \(count) host(s): ")
            guard readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces) == "yes" else {
                Console.error("aborted: nothing was changed")
                throw ExitCode(1)
            }
        }
        // One redactor: what the GitLab client learns is masked in the journal too.
        let redactor = Redactor(secrets: inventory.secrets)
        let journal = try Journal.open(path: JournalLocation.database(forInventory: inventory.path),
                                       redactor: redactor)
        let run = try await journal.beginRun(command: "reset", inventoryPath: inventory.path)
        let pool = ConnectionPool(logger: options.logger(redacting: inventory))
        let reset = Reset(pool: pool, journal: journal) { line in Console.out(line + "\n") }
        let outcomes = await reset.run(plan)
        await pool.closeAll()
        let gitlab = plan.kubeconfigVariable == nil ? nil
            : try GitLabAccess.gateway(for: inventory, redactor: redactor, logger: options.logger(redacting: inventory))
        let gitlabFailure = await reset.removeGitLabVariable(plan, outcomes: outcomes, gitlab: gitlab)
        if let gitlabFailure { Console.error("GitLab: " + gitlabFailure) }
        let failed = outcomes.filter { !$0.succeeded }
        try await journal.finishRun(run.id, status: failed.isEmpty && gitlabFailure == nil ? .succeeded : .failed)
        for outcome in outcomes {
            switch outcome.result {
            case .reset: break
            case .failed(let step, let message): Console.error("\(outcome.host): reset failed at \(step): \(message)")
            case .notStarted(let reason): Console.error("\(outcome.host): \(reason)")
            }
        }
        let done = outcomes.count - failed.count
        var summary = "k3s removed from \(done) of \(outcomes.count) host(s)"
        if !failed.isEmpty {
            summary += "; not reset: " + failed.map { outcome in
                if case .failed(let step, _) = outcome.result { return "\(outcome.host) (\(step))" }
                return outcome.host
            }.joined(separator: ", ")
        }
        Console.out(summary + "\n")
        if !failed.isEmpty || gitlabFailure != nil { throw ExitCode(1) }
    }
}
