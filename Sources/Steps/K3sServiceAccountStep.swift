import Facts
import Foundation
import Inventory
import ProvisionBasics

/// The Kubernetes service account GitLab's CI jobs use, on the first server: the ServiceAccount, a
/// ClusterRoleBinding `<name>-admin` to its ClusterRole, and a long-lived token Secret `<name>-token` (Kubernetes
/// ≥ 1.24 creates none by itself), from templates/ into a 0600 file and `k3s kubectl apply -f`. It waits until the
/// token controller has filled the Secret, then shares the token and the cluster's CA with the next step, in memory
/// only: the probe's output holds the token and never leaves this process.
public struct K3sServiceAccountStep: Step {
    public static let tokenKey = "k3s-service-account-token"
    public static let caKey = "k3s-service-account-ca"
    public static let manifest = ManagedFile(path: "/var/lib/provision/gitlab-service-account.yaml", mode: 0o600)
    /// How long the token controller may take to fill the Secret.
    public static let timeout = 60.0

    public let id = "k3s-service-account"
    public let summary = "the service account for GitLab, its ClusterRoleBinding and its token Secret (kubectl on the first server)"
    public let dependsOn = ["k3s-ready"]
    public let account: ServiceAccountSettings

    public init(account: ServiceAccountSettings) {
        self.account = account
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) }

    /// The three objects as JSON, each after a marker line (kubectl's error instead when one is missing).
    public func probe(for host: InventoryHost) -> String {
        let namespace = ShellQuote.quote(account.namespace)
        return "if command -v k3s >/dev/null 2>&1; then "
            + "echo '@@account'; k3s kubectl -n \(namespace) get serviceaccount \(ShellQuote.quote(account.name)) -o json 2>&1; "
            + "echo '@@binding'; k3s kubectl get clusterrolebinding \(ShellQuote.quote(account.bindingName)) -o json 2>&1; "
            + "echo '@@secret'; k3s kubectl -n \(namespace) get secret \(ShellQuote.quote(account.secretName)) -o json 2>&1; "
            + "echo '@@can-i'; \(canIProbe) "
            + "fi; true"
    }

    /// The API server's answer to `auth can-i` asked with the Secret's own token, the way a CI job will ask: the
    /// token goes from kubectl through base64 into a shell variable and a 0600 kubeconfig that is removed at once,
    /// never onto a command line. Nothing is printed while the Secret has no token yet.
    var canIProbe: String {
        let secret = ShellQuote.quote(account.secretName)
        let kubeconfig = "apiVersion: v1\\nkind: Config\\nclusters:\\n- name: c\\n  cluster:\\n    server: https://127.0.0.1:6443\\n"
            + "    certificate-authority: /var/lib/rancher/k3s/server/tls/server-ca.crt\\nusers:\\n- name: u\\n  user:\\n    token: %s\\n"
            + "contexts:\\n- name: c\\n  context:\\n    cluster: c\\n    user: u\\ncurrent-context: c\\n"
        let question = canIQuestion.map(ShellQuote.quote).joined(separator: " ")
        return "(umask 077; t=$(k3s kubectl -n \(ShellQuote.quote(account.namespace)) get secret \(secret) -o 'jsonpath={.data.token}' 2>/dev/null | base64 -d 2>/dev/null); "
            + "[ -n \"$t\" ] || exit 0; f=$(mktemp) || exit 0; trap 'rm -f \"$f\"' EXIT; "
            + "printf '\(kubeconfig)' \"$t\" > \"$f\"; k3s kubectl --kubeconfig \"$f\" auth can-i \(question) 2>&1); "
    }

    /// What the token is asked: everything for cluster-admin; for another role, whether it may read pods in its
    /// namespace, where "no" is also an answer (the token was accepted; the role decides).
    var canIQuestion: [String] {
        account.clusterRole == "cluster-admin" ? ["*", "*"] : ["get", "pods", "-n", account.namespace]
    }

    /// One object as kubectl printed it: the JSON, or that it is missing, or kubectl's error.
    enum Found: Equatable {
        case object(binding: Binding?, secret: SecretView?)
        case missing
        case failed(String)
    }

    struct Binding: Equatable {
        var roleRef: [String: String]
        var subjects: [[String: String]]
    }

    /// What the Secret says; the token and CA decoded (they stay in memory).
    struct SecretView: Equatable {
        var type: String
        var annotations: [String: String]
        var token: String?
        var ca: String?
    }

    struct Probe: Equatable {
        var account: Found = .missing
        var binding: Found = .missing
        var secret: Found = .missing
        /// `auth can-i`'s last line when asked with the token ("yes", "no" or an error); nil when not asked.
        var canI: String?
    }

    static func read(_ output: String) -> Probe {
        var sections: [String: String] = [:]
        var current: String?
        for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("@@") {
                current = String(line.dropFirst(2))
                sections[current!] = ""
            } else if let name = current {
                sections[name, default: ""] += line + "\n"
            }
        }
        let canI = sections["can-i"]?.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) }
        return Probe(account: found(sections["account"]), binding: found(sections["binding"]),
                     secret: found(sections["secret"]), canI: canI)
    }

    static func found(_ text: String?) -> Found {
        guard let text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return .missing }
        guard let start = text.firstIndex(of: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(text[start...].utf8)) as? [String: Any] else {
            if text.contains("(NotFound)") { return .missing }
            return .failed(text.split(separator: "\n").last.map(String.init) ?? "")
        }
        let metadata = object["metadata"] as? [String: Any] ?? [:]
        var binding: Binding?
        if let roleRef = object["roleRef"] as? [String: Any] {
            binding = Binding(roleRef: roleRef.compactMapValues { $0 as? String },
                              subjects: (object["subjects"] as? [[String: Any]] ?? []).map { $0.compactMapValues { $0 as? String } })
        }
        var secret: SecretView?
        if let type = object["type"] as? String {
            let data = object["data"] as? [String: String] ?? [:]
            func decoded(_ key: String) -> String? {
                data[key].flatMap { Data(base64Encoded: $0) }.flatMap { String(data: $0, encoding: .utf8) }
                    .flatMap { $0.isEmpty ? nil : $0 }
            }
            secret = SecretView(type: type, annotations: metadata["annotations"] as? [String: String] ?? [:],
                                token: decoded("token"), ca: decoded("ca.crt"))
        }
        return .object(binding: binding, secret: secret)
    }

    static let secretType = "kubernetes.io/service-account-token"
    static let accountAnnotation = "kubernetes.io/service-account.name"

    func wantedRoleRef() -> [String: String] {
        ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account.clusterRole]
    }

    func wantedSubject() -> [String: String] {
        ["kind": "ServiceAccount", "name": account.name, "namespace": account.namespace]
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard context.inventory.firstServer?.name == context.host.name else { return .ok("made on the first server") }
        let probe = Self.read(context.probe)
        for (what, found) in [("service account", probe.account), ("binding", probe.binding), ("secret", probe.secret)] {
            if case .failed(let message) = found {
                throw StepError("cannot read the \(what) with kubectl on \(context.host.name): \(message); check that k3s is running (k3s-ready)")
            }
        }
        var problems: [String] = []
        // roleRef and a Secret's type cannot be changed in place: those objects are deleted, then applied again.
        var deletions: [String] = []
        if probe.account == .missing { problems.append("service account \(account.namespace)/\(account.name) is missing") }
        switch probe.binding {
        case .object(let binding?, _):
            if binding.roleRef != wantedRoleRef() {
                problems.append("ClusterRoleBinding \(account.bindingName) refers to \(binding.roleRef["kind"] ?? "?") \(binding.roleRef["name"] ?? "?"), inventory wants ClusterRole \(account.clusterRole)")
                deletions.append("k3s kubectl delete clusterrolebinding \(ShellQuote.quote(account.bindingName))")
            } else if binding.subjects != [wantedSubject()] {
                problems.append("ClusterRoleBinding \(account.bindingName) does not bind exactly the service account \(account.namespace)/\(account.name)")
            }
        default: problems.append("ClusterRoleBinding \(account.bindingName) is missing")
        }
        var secretView: SecretView?
        switch probe.secret {
        case .object(_, let secret?):
            secretView = secret
            if secret.type != Self.secretType {
                problems.append("secret \(account.namespace)/\(account.secretName) has type \(secret.type), not \(Self.secretType)")
                deletions.append("k3s kubectl -n \(ShellQuote.quote(account.namespace)) delete secret \(ShellQuote.quote(account.secretName))")
            } else if secret.annotations[Self.accountAnnotation] != account.name {
                problems.append("secret \(account.namespace)/\(account.secretName) is not annotated for service account \(account.name)")
            }
        default: problems.append("token secret \(account.namespace)/\(account.secretName) is missing")
        }
        if problems.isEmpty, let answer = probe.canI, answer != "yes", !(answer == "no" && canIQuestion != ["*", "*"]) {
            let asked = "kubectl auth can-i \(canIQuestion.joined(separator: " ")) with its token"
            if answer == "no" {
                problems.append("\(asked) says no although it is bound to cluster-admin")
            } else {
                // A token the API server rejects (the Secret was edited, or the signing key changed): make it again.
                problems.append("\(asked) fails: \(answer)")
                deletions.append("k3s kubectl -n \(ShellQuote.quote(account.namespace)) delete secret \(ShellQuote.quote(account.secretName))")
            }
        }
        if !problems.isEmpty {
            let file = Self.manifest
            return .change(reason: problems.joined(separator: "; "),
                           actions: [.writeFile(path: file.path, content: try render(context), mode: file.mode, owner: file.owner)]
                               + deletions.map(Action.run)
                               + [.run("k3s kubectl apply -f \(ShellQuote.quote(file.path))"),
                                  .awaitConvergence(timeout: Self.timeout)])
        }
        guard secretView?.token != nil, secretView?.ca != nil else {
            return .change(reason: "the token controller has not filled secret \(account.namespace)/\(account.secretName) yet",
                           actions: [.awaitConvergence(timeout: Self.timeout)])
        }
        return .ok("service account \(account.namespace)/\(account.name) bound to ClusterRole \(account.clusterRole), its token ready")
    }

    public func shares(_ context: StepContext) -> [String: String] {
        let probe = Self.read(context.probe)
        // Not a token that decide() would replace (wrong Secret type, rejected by the API server).
        guard context.inventory.firstServer?.name == context.host.name,
              case .object(_, let secret?) = probe.secret, secret.type == Self.secretType,
              probe.canI.map({ ["yes", "no"].contains($0) }) ?? true,
              let token = secret.token, let ca = secret.ca else { return [:] }
        return [Self.tokenKey: token, Self.caKey: ca]
    }

    public func desiredState(_ context: StepContext) -> String {
        id + "|" + ((try? render(context)).map(ManagedFile.digest) ?? "unrenderable")
    }

    /// The three objects, from templates/host/gitlab-service-account.yaml.mustache.
    func render(_ context: StepContext) throws -> String {
        let quote = YAMLText.quote
        return try context.templates.render("gitlab-service-account.yaml.mustache", [
            "name": quote(account.name), "namespace": quote(account.namespace),
            "clusterRole": quote(account.clusterRole), "bindingName": quote(account.bindingName),
            "secretName": quote(account.secretName),
        ])
    }
}
