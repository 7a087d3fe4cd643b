import ArgumentParser
import Engine
import Foundation
import Inventory
import ProvisionBasics
import Steps

/// `provision verify INVENTORY`: the plan read as a checklist, one test case per check per host, as JUnit XML for
/// GitLab's test report. Read-only like plan: no lock, no journal, nothing changed on a host or in GitLab.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check, without changing anything, that every host is what the inventory says; JUnit XML for CI.",
        discussion: "Per host: SSH with the pinned host key, the facts, one check per step (k3s version and service, nodes Ready with their labels, Docker, gitlab-runner, runners verified and online in GitLab...), no extra node, no drift. Exit 0 when every check passes, 1 otherwise.")

    @OptionGroup var options: HostOptions

    @Option(help: "Write the JUnit XML report to this file (replaced atomically); - prints it instead of the text or JSON.")
    var junit: String?

    @Option(help: "text or json.")
    var output: RunOutput.Format = .text

    func run() async throws {
        let inventory = try options.loadInventory()
        let selected = try options.selectedHosts(in: inventory)
        let redactor = Redactor(secrets: inventory.secrets)
        let logger = options.logger(redactor: redactor)
        let pool = ConnectionPool(logger: logger)
        let steps = StepCatalog.steps(for: inventory)
        // The very walk `plan` makes: what verify passes is what apply would leave alone.
        let converger = Converger(inventory: inventory, steps: steps, templates: options.templates(for: inventory),
                                  pool: pool, settings: .init(mode: .plan, parallel: options.parallel),
                                  redactor: redactor,
                                  gitlab: try GitLabAccess.gateway(for: inventory, redactor: redactor, logger: logger))
        let reports = await converger.run(hosts: selected)
        await pool.closeAll()
        let results = zip(selected, reports).map { host, report in
            Verification.verify(report, host: host, inventory: inventory, steps: steps,
                                inventoryArgument: options.inventory)
        }
        if let junit {
            let xml = redactor.redact(JUnitReport.render(results))
            if junit == "-" {
                Console.out(xml)
            } else {
                do {
                    try Data(xml.utf8).write(to: URL(fileURLWithPath: junit), options: .atomic)
                } catch {
                    Console.error("cannot write the JUnit report to \(junit): \(error.localizedDescription)")
                    throw ExitCode(1)
                }
            }
        }
        if junit != "-" {
            switch output {
            case .json: Console.out(redactor.redact(try Self.json(results)))
            case .text: Console.out(redactor.redact(Self.text(results)))
            }
        }
        if !results.allSatisfy(\.passed) { throw ExitCode(1) }
    }

    /// Per host a ✔ or ✘ line per check; a failure says what differs and the fix.
    static func text(_ results: [HostVerification]) -> String {
        var text = ""
        for host in results {
            text += "\(host.name): \(host.passed ? "all \(host.cases.count) checks pass" : "\(host.failures) of \(host.cases.count) checks fail")\n"
            for check in host.cases {
                text += "  \(check.passed ? "✔" : "✘") \(check.check): \(check.message)\n"
                if let fix = check.fix { text += "      fix: \(fix)\n" }
            }
        }
        let checks = results.reduce(0) { $0 + $1.cases.count }
        let failures = results.reduce(0) { $0 + $1.failures }
        text += failures == 0
            ? "Verify: all \(checks) checks pass on \(results.count) host(s).\n"
            : "Verify: \(failures) of \(checks) checks fail on \(results.filter { !$0.passed }.count) host(s).\n"
        return text
    }

    struct JSONReport: Encodable {
        let passed: Bool
        let checks: Int
        let failures: Int
        let hosts: [HostVerification]
    }

    static func json(_ results: [HostVerification]) throws -> String {
        let report = JSONReport(passed: results.allSatisfy(\.passed), checks: results.reduce(0) { $0 + $1.cases.count },
                                failures: results.reduce(0) { $0 + $1.failures }, hosts: results)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
    }
}
