import Facts
import Foundation
import Inventory
import ProvisionBasics

/// The service account's kubeconfig as a file-type CI/CD variable (default KUBECONFIG) of the inventory's project or
/// group: rendered from templates/host/gitlab-kubeconfig.yaml.mustache with the token and CA the step
/// `k3s-service-account` shared, and the API address GitLab's jobs reach. Created when missing, updated when its
/// value or flags differ, left alone otherwise. The value holds the token: it appears in no summary or message.
public struct GitLabKubeconfigVariableStep: Step {
    public let id = "gitlab-kubeconfig-variable"
    public let summary = "the service account's kubeconfig as a file-type CI/CD variable in GitLab"
    public let dependsOn = ["k3s-service-account"]
    public let account: ServiceAccountSettings

    public init(account: ServiceAccountSettings) {
        self.account = account
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) }

    public func probe(for host: InventoryHost) -> String { "true" }

    var owner: VariableOwnerID { Self.owner(account) }

    /// The project or group whose variable holds the kubeconfig.
    public static func owner(_ account: ServiceAccountSettings) -> VariableOwnerID {
        if let project = account.projectId { return .project(project) }
        return .group(account.groupId ?? 0)
    }

    var query: GitLabQuery { .variable(owner: owner, key: account.variableKey, environmentScope: account.environmentScope) }

    public func gitlabQueries(_ context: StepContext) -> [GitLabQuery] {
        context.inventory.firstServer?.name == context.host.name ? [query] : []
    }

    /// Where GitLab's jobs reach the API: `apiURL`, else the first server on 6443.
    static func server(_ account: ServiceAccountSettings, inventory: Inventory) -> String {
        if let url = account.apiURL { return url }
        let address = inventory.firstServer?.address ?? ""
        return "https://" + (address.contains(":") ? "[\(address)]" : address) + ":6443"
    }

    /// The variable as it should be; nil until `k3s-service-account` has shared the token and CA.
    func wanted(_ context: StepContext) throws -> VariableState? {
        guard let token = context.shared[K3sServiceAccountStep.tokenKey],
              let ca = context.shared[K3sServiceAccountStep.caKey] else { return nil }
        let quote = YAMLText.quote
        let value = try context.templates.render("gitlab-kubeconfig.yaml.mustache", [
            "server": quote(Self.server(account, inventory: context.inventory)),
            "caData": Data(ca.utf8).base64EncodedString(),
            "token": quote(token),
            "cluster": quote("provision"),
            "user": quote(account.name),
            "context": quote("\(account.name)@provision"),
            "namespace": quote(account.namespace),
        ])
        // A kubeconfig cannot be masked (GitLab masks only single-line values); raw keeps `$` as written.
        return VariableState(value: value, variableType: "file", protected: true, masked: false, raw: true)
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard context.inventory.firstServer?.name == context.host.name else { return .ok("published from the first server") }
        // In a plan the service account may still be to make: there is no token to compare with yet.
        guard let wanted = try wanted(context) else {
            return .change(reason: "the service account's token is not known until k3s-service-account has converged", actions: [])
        }
        let name = "CI/CD variable \(account.variableKey) of \(owner) (environment scope \(account.environmentScope))"
        let write = VariableWrite(owner: owner, key: account.variableKey, environmentScope: account.environmentScope,
                                  state: wanted)
        switch context.gitlab[query] {
        case .variable(nil)?:
            return .change(reason: "\(name) is missing", actions: [.gitlab(.putVariable(write, create: true))])
        case .variable(let current?)?:
            var differences: [String] = []
            if current.value != wanted.value { differences.append("its kubeconfig differs") }
            if current.variableType != wanted.variableType { differences.append("it is of type \(current.variableType), not file") }
            if current.protected != wanted.protected { differences.append("it is not protected") }
            if current.masked != wanted.masked { differences.append("it is masked") }
            if current.raw != wanted.raw { differences.append("it is expanded, not raw") }
            guard differences.isEmpty else {
                return .change(reason: "\(name): \(differences.joined(separator: ", "))",
                               actions: [.gitlab(.putVariable(write, create: false))])
            }
            return .ok("\(name) holds the service account's kubeconfig")
        case .failed(let message)?:
            throw StepError("cannot read \(name) from GitLab: \(message)")
        default:
            throw StepError("GitLab gave no answer about \(name)")
        }
    }

    /// Not the kubeconfig (it holds the token): what the inventory asks for.
    public func desiredState(_ context: StepContext) -> String {
        [id, account.variableKey, owner.description, account.environmentScope, account.name, account.namespace,
         Self.server(account, inventory: context.inventory)].joined(separator: "|")
    }
}
