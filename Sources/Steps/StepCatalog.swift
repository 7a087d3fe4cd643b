import Inventory

/// Every step, in the order the manual procedure does them. New steps are added here.
public enum StepCatalog {
    /// The steps an inventory asks for (Docker and gitlab-runner only with hosts that have the role runner; k3s steps
    /// only with a k3s block, the service account with gitlab.serviceAccount too, the GitLab agent with gitlab.agent; airgap assets in airgap mode, the downloaded install script otherwise).
    public static func steps(for inventory: Inventory) -> [any Step] {
        var steps: [any Step] = [BasePackagesStep(), RaspberryPiCgroupsStep(), KernelForwardingStep()]
        if !inventory.hosts(with: .runner).isEmpty {
            steps += [DockerStep(settings: inventory.docker ?? DockerSettings()),
                      GitLabRunnerPackageStep(gitlab: inventory.gitlab), GitLabRunnerRegistrationStep()]
        }
        if let k3s = inventory.k3s {
            steps.append(k3s.isAirgap ? K3sAssetsStep() : K3sInstallScriptStep())
            steps += [K3sTokenStep(), K3sConfigStep(), DockerForwardStep(k3s: k3s), K3sServiceStep(), K3sReadyStep()]
            if let account = inventory.gitlab?.serviceAccount {
                steps += [K3sServiceAccountStep(account: account), GitLabKubeconfigVariableStep(account: account)]
            }
            if let agent = inventory.gitlab?.agent { steps.append(GitLabAgentStep(agent: agent)) }
        }
        return steps
    }
}
