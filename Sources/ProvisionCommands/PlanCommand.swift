import ArgumentParser
import Engine
import Inventory
import Journal
import ProvisionBasics
import Steps
import Templates

/// `provision plan INVENTORY`: read-only; per host, per step, what apply would change and why.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show, without changing anything, what apply would change on each host and why.",
        discussion: "Exit 0 when nothing is to change (or, without --detailed-exitcode, whenever the plan was made), 2 with --detailed-exitcode when changes are pending, 1 on error.")

    @OptionGroup var options: HostOptions

    @Option(help: "text or json.")
    var output: RunOutput.Format = .text

    @Flag(help: "Exit 2 when changes are pending.")
    var detailedExitcode = false

    func run() async throws {
        let inventory = try options.loadInventory()
        let selected = try options.selectedHosts(in: inventory)
        let redactor = Redactor(secrets: inventory.secrets)
        let logger = options.logger(redactor: redactor)
        let pool = ConnectionPool(logger: logger)
        // Read-only like the rest of plan: what an apply kept (digests, program versions) is used, nothing written.
        let journal = try? Journal.openExisting(path: JournalLocation.database(forInventory: inventory.path))
        if let known = try? await journal?.fileDigests() { K3s.remember(known) }
        let knownPrograms = (try? await journal?.hostPrograms()) ?? [:]
        let converger = Converger(inventory: inventory, templates: options.templates(for: inventory), pool: pool,
                                  settings: .init(mode: .plan, parallel: options.parallel, knownPrograms: knownPrograms),
                                  redactor: redactor,
                                  gitlab: try GitLabAccess.gateway(for: inventory, redactor: redactor, logger: logger))
        let reports = await converger.run(hosts: selected)
        await pool.closeAll()
        switch output {
        case .json: Console.out(try RunOutput.json(reports, plan: true))
        case .text: Console.out(RunOutput.plan(reports))
        }
        if reports.contains(where: { $0.error != nil || $0.count(.failed) > 0 }) { throw ExitCode(1) }
        if detailedExitcode && reports.contains(where: \.pendingChanges) { throw ExitCode(2) }
    }
}
