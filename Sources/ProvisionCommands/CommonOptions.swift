import ArgumentParser
import Engine
import Foundation
import Inventory
import Logging
import ProvisionBasics
import Templates

/// Options every command that talks to hosts shares.
struct HostOptions: ParsableArguments {
    @Argument(help: "The inventory file (YAML).")
    var inventory: String

    @Option(help: "How many hosts to work on at once.")
    var parallel: Int = 10

    @Flag(name: .shortAndLong, help: "Log connections and remote commands to stderr (secrets redacted).")
    var verbose = false

    @Option(name: .customLong("host"), help: "Only this host (repeatable). Default: every host.")
    var hosts: [String] = []

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1") }
    }

    /// Loads the inventory or prints every problem in it (file:line:column) and exits 1.
    func loadInventory() throws -> Inventory {
        do {
            return try InventoryLoader.load(path: inventory)
        } catch let error as InventoryError {
            Console.error(error.description)
            throw ExitCode(1)
        }
    }

    func logger(redacting inventory: Inventory) -> Logger {
        logger(redactor: Redactor(secrets: inventory.secrets))
    }

    /// A logger sharing `redactor`, so secrets learnt during the run are masked in its lines too.
    func logger(redactor: Redactor) -> Logger {
        let level: Logger.Level = verbose ? .debug : .notice
        return Logger(label: "provision") { _ in StderrLogHandler(level: level, redactor: redactor) }
    }
}

extension HostOptions {
    /// The hosts named with --host (all when none are); an unknown name is a usage error.
    func selectedHosts(in inventory: Inventory) throws -> [InventoryHost] {
        let names = hosts
        guard !names.isEmpty else { return inventory.hosts }
        let unknown = names.filter { inventory.host(named: $0) == nil }
        guard unknown.isEmpty else {
            throw ValidationError("no host named \(unknown.joined(separator: ", ")) in \(inventory.path)")
        }
        return inventory.hosts.filter { names.contains($0.name) }
    }

    /// Built-in templates, overridden by a templates/ folder beside the inventory.
    func templates(for inventory: Inventory) -> TemplateSet {
        TemplateSet(overrideDirectory: (inventory.path as NSString).deletingLastPathComponent + "/templates")
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}
