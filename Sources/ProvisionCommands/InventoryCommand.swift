import ArgumentParser
import Inventory
import ProvisionBasics

/// `provision inventory check FILE`: every problem at once, as file:line:column lines.
struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory",
        abstract: "Work with inventory files.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an inventory and print every problem as file:line:column: message.")

        @Argument(help: "The inventory file (YAML).")
        var file: String

        func run() async throws {
            do {
                let inventory = try InventoryLoader.load(path: file)
                let roles = inventory.hosts.map { "\($0.name) (\($0.roles.map(\.rawValue).joined(separator: ",")))" }
                Console.out("\(file): ok, \(inventory.hosts.count) hosts: \(roles.joined(separator: ", "))\n")
            } catch let error as InventoryError {
                Console.error(error.description)
                throw ExitCode(1)
            }
        }
    }
}
