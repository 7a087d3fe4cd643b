import Facts
import Foundation
import Inventory
@testable import Steps
import Templates
import Testing

/// The service account from kubectl's JSON (probe), and the kubeconfig variable from GitLab's answer.
@Suite struct ServiceAccountStepTests {
    static let token = "eyJhbGciOiJSUzI1NiJ9.service-account-token"
    static let ca = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

    func inventory(_ account: String = "{projectId: 200}") throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.32.5+k3s1}
            gitlab: {url: "https://gitlab.example.com", token: "${env:GT}", serviceAccount: \(account)}
            hosts:
              - {name: s1, address: 10.0.0.2, roles: [server]}
              - {name: a1, address: 10.0.0.3, roles: [agent]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root", "GT": "glpat-secret"])
    }

    func context(_ inventory: Inventory, probe: String = "", host: String = "s1", shared: [String: String] = [:],
                 gitlab: [GitLabQuery: GitLabAnswer] = [:]) throws -> StepContext {
        StepContext(host: try #require(inventory.host(named: host)), inventory: inventory, facts: HostFacts(),
                    probe: probe, templates: TemplateSet(), shared: shared, gitlab: gitlab)
    }

    // MARK: kubectl's answers

    static func notFound(_ kind: String, _ name: String) -> String { "Error from server (NotFound): \(kind) \"\(name)\" not found\n" }

    static let account = #"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"gitlab","namespace":"kube-system"}}"#

    static func binding(role: String = "cluster-admin", subject: String = "gitlab") -> String {
        #"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"gitlab-admin"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":""# + role
            + #""},"subjects":[{"kind":"ServiceAccount","name":""# + subject + #"","namespace":"kube-system"}]}"#
    }

    static func secret(type: String = "kubernetes.io/service-account-token", filled: Bool = true) -> String {
        let data = filled ? #","data":{"token":""# + Data(token.utf8).base64EncodedString() + #"","ca.crt":""#
            + Data(ca.utf8).base64EncodedString() + #"","namespace":"a3ViZS1zeXN0ZW0="}"# : ""
        return #"{"apiVersion":"v1","kind":"Secret","type":""# + type
            + #"","metadata":{"name":"gitlab-token","namespace":"kube-system","annotations":{"kubernetes.io/service-account.name":"gitlab"}}"#
            + data + "}"
    }

    static func probe(account: String = account, binding: String = binding(), secret: String = secret(),
                      canI: String = "yes") -> String {
        "@@account\n\(account)\n@@binding\n\(binding)\n@@secret\n\(secret)\n@@can-i\n\(canI)\n"
    }

    @Test func aTokenTheAPIServerRejectsIsMadeAgainAndAClusterAdminThatMayNotIsNamed() throws {
        let inventory = try inventory()
        let step = K3sServiceAccountStep(account: try #require(inventory.gitlab?.serviceAccount))
        // The probe asks with the token from a temporary kubeconfig, never with --token on the command line.
        #expect(step.probe(for: try #require(inventory.host(named: "s1"))).contains("--kubeconfig \"$f\" auth can-i '*' '*'"))
        #expect(!step.probe(for: try #require(inventory.host(named: "s1"))).contains("--token"))
        let rejected = try step.decide(try context(inventory, probe: Self.probe(canI: "error: You must be logged in to the server (Unauthorized)")))
        #expect(rejected.reason == "kubectl auth can-i * * with its token fails: error: You must be logged in to the server (Unauthorized)")
        #expect(rejected.actions.dropFirst().first == .run("k3s kubectl -n kube-system delete secret gitlab-token"))
        // A token about to be replaced is not shared with the variable's plan.
        #expect(step.shares(try context(inventory, probe: Self.probe(canI: "error: You must be logged in to the server (Unauthorized)"))).isEmpty)
        let denied = try step.decide(try context(inventory, probe: Self.probe(canI: "no")))
        #expect(denied.reason == "kubectl auth can-i * * with its token says no although it is bound to cluster-admin")
        // Not asked yet (no token in the Secret): only the token wait decides.
        let unasked = "@@account\n\(Self.account)\n@@binding\n\(Self.binding())\n@@secret\n\(Self.secret())\n@@can-i\n"
        #expect(try step.decide(try context(inventory, probe: unasked)).reason.hasPrefix("service account kube-system/gitlab bound"))
    }

    @Test func aNewClusterGetsTheManifestAppliedFromA0600FileThenWaitsForTheToken() throws {
        let inventory = try inventory()
        let step = try #require(StepCatalog.steps(for: inventory).first { $0.id == "k3s-service-account" })
        let probe = Self.probe(account: Self.notFound("serviceaccounts", "gitlab"),
                               binding: Self.notFound("clusterrolebindings.rbac.authorization.k8s.io", "gitlab-admin"),
                               secret: Self.notFound("secrets", "gitlab-token"))
        let decision = try step.decide(try context(inventory, probe: probe))
        guard case .change(let reason, let actions) = decision,
              case .writeFile(let path, let content, let mode, _) = actions.first else {
            Issue.record("no write: \(decision)"); return
        }
        #expect(reason.contains("service account kube-system/gitlab is missing"))
        #expect(path == "/var/lib/provision/gitlab-service-account.yaml" && mode == 0o600)
        #expect(content.contains("kind: ClusterRoleBinding") && content.contains("name: 'gitlab-admin'")
                && content.contains("type: kubernetes.io/service-account-token")
                && content.contains("kubernetes.io/service-account.name: 'gitlab'"))
        #expect(Array(actions.dropFirst()) == [.run("k3s kubectl apply -f /var/lib/provision/gitlab-service-account.yaml"),
                                               .awaitConvergence(timeout: 60)])
        #expect(step.shares(try context(inventory, probe: probe)).isEmpty)
    }

    @Test func anUnfilledTokenIsWaitedForAndAFilledOneIsSharedDecoded() throws {
        let inventory = try inventory()
        let step = K3sServiceAccountStep(account: try #require(inventory.gitlab?.serviceAccount))
        let waiting = try step.decide(try context(inventory, probe: Self.probe(secret: Self.secret(filled: false))))
        #expect(waiting.actions == [.awaitConvergence(timeout: 60)])
        let ready = try context(inventory, probe: Self.probe())
        #expect(try step.decide(ready) == .ok("service account kube-system/gitlab bound to ClusterRole cluster-admin, its token ready"))
        #expect(step.shares(ready) == [K3sServiceAccountStep.tokenKey: Self.token, K3sServiceAccountStep.caKey: Self.ca])
        // Other servers and agents have nothing to do.
        #expect(try step.decide(try context(inventory, probe: "", host: "a1")) == .ok("made on the first server"))
    }

    @Test func aBindingToAnotherRoleIsDeletedFirstAndAnotherSubjectReapplied() throws {
        let inventory = try inventory()
        let step = K3sServiceAccountStep(account: try #require(inventory.gitlab?.serviceAccount))
        let other = try step.decide(try context(inventory, probe: Self.probe(binding: Self.binding(role: "view"))))
        #expect(other.reason == "ClusterRoleBinding gitlab-admin refers to ClusterRole view, inventory wants ClusterRole cluster-admin")
        #expect(other.actions.dropFirst().first == .run("k3s kubectl delete clusterrolebinding gitlab-admin"))
        let subject = try step.decide(try context(inventory, probe: Self.probe(binding: Self.binding(subject: "someone"))))
        #expect(subject.reason == "ClusterRoleBinding gitlab-admin does not bind exactly the service account kube-system/gitlab")
        #expect(subject.actions.dropFirst().first == .run("k3s kubectl apply -f /var/lib/provision/gitlab-service-account.yaml"))
        let opaque = try step.decide(try context(inventory, probe: Self.probe(secret: Self.secret(type: "Opaque"))))
        #expect(opaque.actions.dropFirst().first == .run("k3s kubectl -n kube-system delete secret gitlab-token"))
        #expect(throws: StepError.self) {
            try step.decide(try context(inventory, probe: Self.probe(secret: "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?")))
        }
    }

    @Test func noActionOrReasonCarriesTheToken() throws {
        let inventory = try inventory()
        let step = K3sServiceAccountStep(account: try #require(inventory.gitlab?.serviceAccount))
        for probe in [Self.probe(binding: Self.binding(role: "view")), Self.probe()] {
            let decision = try step.decide(try context(inventory, probe: probe))
            #expect(!decision.reason.contains(Self.token) && !decision.actions.map(\.summary).joined().contains(Self.token))
            for case .writeFile(_, let content, _, _) in decision.actions { #expect(!content.contains(Self.token)) }
        }
    }

    // MARK: The variable

    var shared: [String: String] { [K3sServiceAccountStep.tokenKey: Self.token, K3sServiceAccountStep.caKey: Self.ca] }

    func kubeconfig(_ inventory: Inventory, step: GitLabKubeconfigVariableStep) throws -> VariableState {
        try #require(try step.wanted(try context(inventory, shared: shared)))
    }

    @Test func aMissingVariableIsCreatedAsAProtectedRawFileVariableWithAWorkingKubeconfig() throws {
        let inventory = try inventory()
        let step = GitLabKubeconfigVariableStep(account: try #require(inventory.gitlab?.serviceAccount))
        let query = GitLabQuery.variable(owner: .project(200), key: "KUBECONFIG", environmentScope: "*")
        #expect(step.gitlabQueries(try context(inventory, shared: shared)) == [query])
        let decision = try step.decide(try context(inventory, shared: shared, gitlab: [query: .variable(nil)]))
        guard case .gitlab(.putVariable(let write, let create))? = decision.actions.first, decision.actions.count == 1 else {
            Issue.record("no creation: \(decision)"); return
        }
        #expect(create && write.owner == .project(200) && write.key == "KUBECONFIG" && write.environmentScope == "*")
        #expect(write.state.variableType == "file" && write.state.protected && !write.state.masked && write.state.raw)
        let value = write.state.value
        #expect(value.contains("server: 'https://10.0.0.2:6443'"))
        #expect(value.contains("certificate-authority-data: \(Data(Self.ca.utf8).base64EncodedString())"))
        #expect(value.contains("token: '\(Self.token)'"))
        #expect(decision.reason == "CI/CD variable KUBECONFIG of project 200 (environment scope *) is missing")
        #expect(!decision.actions[0].summary.contains(Self.token) && !decision.reason.contains(Self.token))
        #expect(decision.actions[0].summary == "create CI/CD variable KUBECONFIG (file variable (protected, not masked, raw), environment scope *) of project 200 in GitLab")
    }

    @Test func theSameVariableIsLeftAloneAndADifferentOneUpdated() throws {
        let inventory = try inventory("{groupId: 100, environmentScope: production, apiURL: \"https://10.0.0.2:6443\"}")
        let step = GitLabKubeconfigVariableStep(account: try #require(inventory.gitlab?.serviceAccount))
        let query = GitLabQuery.variable(owner: .group(100), key: "KUBECONFIG", environmentScope: "production")
        let wanted = try kubeconfig(inventory, step: step)
        #expect(try step.decide(try context(inventory, shared: shared, gitlab: [query: .variable(wanted)]))
            == .ok("CI/CD variable KUBECONFIG of group 100 (environment scope production) holds the service account's kubeconfig"))
        var edited = wanted
        edited.value = "apiVersion: v1\nkind: Config\n"
        edited.protected = false
        let update = try step.decide(try context(inventory, shared: shared, gitlab: [query: .variable(edited)]))
        #expect(update.reason == "CI/CD variable KUBECONFIG of group 100 (environment scope production): its kubeconfig differs, it is not protected")
        #expect(update.actions == [.gitlab(.putVariable(VariableWrite(owner: .group(100), key: "KUBECONFIG",
                                                                      environmentScope: "production", state: wanted), create: false))])
        var envVar = wanted
        envVar.variableType = "env_var"
        #expect(try step.decide(try context(inventory, shared: shared, gitlab: [query: .variable(envVar)])).actions.count == 1)
        #expect(throws: StepError.self) {
            try step.decide(try context(inventory, shared: shared, gitlab: [query: .failed("401 Unauthorized")]))
        }
    }
}
