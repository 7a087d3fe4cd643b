import Testing
@testable import Inventory

@Suite("Inventory: gitlab.serviceAccount")
struct InventoryServiceAccountTests {
    static let environment = ["HOME": "/home/op", "GITLAB_TOKEN": "glpat-secret"]

    func yaml(_ account: String, k3s: String? = "k3s: {version: v1.32.5+k3s1, tlsSan: [k3s.lab.example, 192.168.1.50]}",
              token: Bool = true) -> String {
        """
        \(k3s ?? "")
        gitlab:
          url: https://gitlab.example.com
        \(token ? "  token: ${env:GITLAB_TOKEN}\n" : "")  serviceAccount: \(account)
        hosts:
          - {name: s1, address: 192.168.1.10, roles: [server]}
        """
    }

    @Test("defaults: gitlab in kube-system, cluster-admin, KUBECONFIG for every environment")
    func defaults() throws {
        let inventory = try InventoryFixtures.parse(yaml("{projectId: 200}"), environment: Self.environment)
        #expect(inventory.gitlab?.serviceAccount == ServiceAccountSettings(projectId: 200))
        let account = try #require(inventory.gitlab?.serviceAccount)
        #expect(account.name == "gitlab" && account.namespace == "kube-system" && account.clusterRole == "cluster-admin")
        #expect(account.environmentScope == "*" && account.variableKey == "KUBECONFIG" && account.apiURL == nil)
        #expect(account.bindingName == "gitlab-admin" && account.secretName == "gitlab-token")
    }

    @Test("every key is read; apiURL may name a tlsSan entry or the first server's address")
    func everyKey() throws {
        let inventory = try InventoryFixtures.parse(yaml("""
            {name: ci, namespace: ci-system, clusterRole: edit, groupId: 100, environmentScope: production, apiURL: "https://k3s.lab.example:6443", variableKey: KUBE_CONFIG}
            """), environment: Self.environment)
        #expect(inventory.gitlab?.serviceAccount == ServiceAccountSettings(
            name: "ci", namespace: "ci-system", clusterRole: "edit", groupId: 100, environmentScope: "production",
            apiURL: "https://k3s.lab.example:6443", variableKey: "KUBE_CONFIG"))
        let server = try InventoryFixtures.parse(yaml("{projectId: 200, apiURL: \"https://192.168.1.10:6443\"}"),
                                                 environment: Self.environment)
        #expect(server.gitlab?.serviceAccount?.apiURL == "https://192.168.1.10:6443")
    }

    @Test("mistakes name their place and what to do")
    func mistakes() {
        #expect(InventoryFixtures.problems(yaml("{projectId: 200, apiURL: \"https://other.example:6443\"}"),
                                           environment: Self.environment)
            == ["/srv/inventory.yaml:5:44: apiURL's host 'other.example' is not in the API's certificate: add it to k3s.tlsSan, or use the first server's address (192.168.1.10)"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200, apiURL: \"http://192.168.1.10:6443\"}"),
                                           environment: Self.environment)
            == ["/srv/inventory.yaml:5:44: apiURL must be an https:// URL of the cluster's API such as 'https://k3s.example.com:6443', got 'http://192.168.1.10:6443'"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200, groupId: 100}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:36: serviceAccount publishes its kubeconfig to one project or one group: set projectId or groupId, not both (the other is at line 5, column 20)"])
        #expect(InventoryFixtures.problems(yaml("{name: GitLab}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:19: serviceAccount needs projectId or groupId: the project or group whose CI/CD variable KUBECONFIG gets the kubeconfig",
                "/srv/inventory.yaml:5:26: name 'GitLab' is invalid: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200}", k3s: nil), environment: Self.environment)
            == ["/srv/inventory.yaml:5:3: serviceAccount lives in the k3s cluster, but the inventory has no k3s block: add one, or remove serviceAccount"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200}", token: false), environment: Self.environment)
            == ["/srv/inventory.yaml:4:3: serviceAccount publishes its kubeconfig through GitLab's API: gitlab needs token, an access token with the api scope (Maintainer of the project, Owner of the group)"])
        #expect(InventoryFixtures.problems(yaml("{projectId: 200, variableKey: KUBE-CONFIG}"), environment: Self.environment)
            == ["/srv/inventory.yaml:5:49: variableKey 'KUBE-CONFIG' is invalid: GitLab takes at most 255 letters, digits and '_'"])
    }
}
