import ArgumentParser

/// `provision`: the root command; each subcommand is one file.
public struct ProvisionCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Turn a YAML inventory of Debian hosts into a working k3s + GitLab CI lab, over SSH.",
        version: "0.1.0",
        subcommands: [PlanCommand.self, ApplyCommand.self, VerifyCommand.self, StatusCommand.self, FactsCommand.self, ExecCommand.self,
                      ResetCommand.self, KubeconfigCommand.self, InventoryCommand.self]
    )

    public init() {}
}
