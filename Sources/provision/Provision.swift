import ProvisionCommands

@main extension ProvisionCommand {}
