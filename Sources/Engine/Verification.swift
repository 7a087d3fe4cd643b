import Facts
import Inventory
import ProvisionBasics
import Steps

/// One check of `provision verify` on one host: a test case in the JUnit report.
public struct VerificationCase: Sendable, Equatable, Encodable {
    /// Stable name: "ssh", "facts", a step id, "no-extra-node" or "no-drift".
    public var check: String
    /// What the check asserts, for people.
    public var title: String
    public var passed: Bool
    /// How we know (when passed) or what differs (when not).
    public var message: String
    /// What kind of failure (unreachable, facts, drift, error, not-run, extra-node); nil when passed.
    public var kind: String?
    /// What to do about a failure; nil when passed.
    public var fix: String?
    public var durationMs: Int

    public init(check: String, title: String, passed: Bool, message: String, kind: String? = nil, fix: String? = nil,
                durationMs: Int = 0) {
        self.check = check
        self.title = title
        self.passed = passed
        self.message = message
        self.kind = passed ? nil : kind
        self.fix = passed ? nil : fix
        self.durationMs = durationMs
    }
}

/// Every check on one host: a test suite in the JUnit report.
public struct HostVerification: Sendable, Equatable, Encodable {
    public var name: String
    public var cases: [VerificationCase]
    public var durationMs: Int

    public init(name: String, cases: [VerificationCase], durationMs: Int = 0) {
        self.name = name
        self.cases = cases
        self.durationMs = durationMs
    }

    public var failures: Int { cases.filter { !$0.passed }.count }
    public var passed: Bool { failures == 0 }
}

/// `verify` is a plan read as a checklist: each host's plan report becomes test cases (the connection, the facts,
/// one per step, extra nodes, no drift). This table is the one place that names them and says how to fix them.
public enum Verification {
    public static let titles = [
        "ssh": "SSH reachable with the pinned host key",
        "facts": "facts fit the inventory (architecture with a k3s release, board, memory cgroup on a Raspberry Pi)",
        "no-extra-node": "no node in the cluster beyond the inventory's hosts",
        "no-drift": "the plan for this host is empty",
    ]

    /// What apply does about a step that differs, after "provision apply INVENTORY --host NAME".
    static let applyHints = [
        "pi-cgroups": "adds the cgroup flags to cmdline.txt and reboots the Pi",
        "k3s-config": "writes config.yaml from its template again and restarts k3s",
        "k3s-service": "installs k3s at the pinned version and starts it",
        "k3s-ready": "waits for the nodes; `k3s kubectl describe node NODE` on the first server says why one is not Ready",
        "docker": "installs Docker at the pinned version, enables and starts it",
        "gitlab-runner-package": "installs the pinned gitlab-runner and starts its service",
        "gitlab-runner-registration": "creates or registers the runners in GitLab again and writes config.toml",
        "gitlab-agent": "registers the agent in GitLab, or writes a new token of it to its CI/CD variable",
    ]

    /// What to check when a step could not even decide (its probe or GitLab answered something unusable).
    static let errorHints = [
        "k3s-token": "make k3s.token the cluster's (/var/lib/rancher/k3s/server/token on the first server) or leave it out",
        "gitlab-runner-registration": "check gitlab.url and gitlab.token, and that GitLab answers",
        "gitlab-runner-package": "check gitlab.url and that the host reaches GitLab's apt repository",
        "gitlab-agent": "check gitlab.token (api scope, Maintainer of the agent's project) and that GitLab answers",
    ]

    /// The checks of one host, from its plan report; `inventoryArgument` is the inventory as the user named it (for fixes).
    public static func verify(_ report: HostReport, host: InventoryHost, inventory: Inventory, steps: [any Step],
                              inventoryArgument: String) -> HostVerification {
        let apply = ShellQuote.join(["provision", "apply", inventoryArgument, "--host", host.name])
        let plan = ShellQuote.join(["provision", "plan", inventoryArgument, "--host", host.name, "-v"])
        var cases: [VerificationCase] = []
        if let error = report.error {
            cases.append(VerificationCase(
                check: "ssh", title: titles["ssh"]!, passed: false, message: error, kind: "unreachable",
                fix: "check that \(host.ssh.user)@\(host.address):\(host.ssh.port) answers SSH; a refused host key means the host's key changed: confirm it, then update \(host.ssh.knownHosts) or ssh.hostKeyFingerprint"))
            cases.append(VerificationCase(check: "no-drift", title: titles["no-drift"]!, passed: false,
                                          message: "not checked: the host could not be read", kind: "not-run",
                                          fix: "fix the ssh check first"))
            return HostVerification(name: host.name, cases: cases, durationMs: report.durationMs)
        }
        cases.append(VerificationCase(check: "ssh", title: titles["ssh"]!, passed: true,
                                      message: "connected to \(host.ssh.user)@\(host.address):\(host.ssh.port), host key accepted"))
        cases.append(factsCase(report.facts, host: host, inventory: inventory, apply: apply))
        let summaries = Dictionary(steps.map { ($0.id, $0.summary) }, uniquingKeysWith: { first, _ in first })
        for outcome in report.steps {
            cases.append(stepCase(outcome, title: summaries[outcome.id] ?? outcome.id, apply: apply, plan: plan))
        }
        if host.name == inventory.firstServer?.name, let ready = report.steps.first(where: { $0.id == "k3s-ready" }),
           ready.status == .ok {
            cases.append(extraNodesCase(ready.message))
        }
        let differing = report.steps.filter { $0.status != .ok }
        cases.append(differing.isEmpty
            ? VerificationCase(check: "no-drift", title: titles["no-drift"]!, passed: true,
                               message: "all \(report.steps.count) step(s) match the inventory")
            : VerificationCase(check: "no-drift", title: titles["no-drift"]!, passed: false,
                               message: "\(differing.count) step(s) differ: \(differing.map(\.id).joined(separator: ", "))",
                               kind: "drift", fix: apply))
        return HostVerification(name: host.name, cases: cases, durationMs: report.durationMs)
    }

    static func stepCase(_ outcome: StepOutcome, title: String, apply: String, plan: String) -> VerificationCase {
        switch outcome.status {
        case .ok, .changed:
            return VerificationCase(check: outcome.id, title: title, passed: true, message: outcome.message,
                                    durationMs: outcome.durationMs)
        case .pending:
            let hint = applyHints[outcome.id].map { " (\($0))" } ?? ""
            return VerificationCase(check: outcome.id, title: title, passed: false, message: outcome.message,
                                    kind: "drift", fix: apply + hint, durationMs: outcome.durationMs)
        case .skipped:
            return VerificationCase(check: outcome.id, title: title, passed: false, message: outcome.message,
                                    kind: "not-run", fix: "fix the step it needs first, then \(apply)",
                                    durationMs: outcome.durationMs)
        default:
            let hint = errorHints[outcome.id].map { $0 + "; " } ?? ""
            return VerificationCase(check: outcome.id, title: title, passed: false, message: outcome.message,
                                    kind: "error", fix: "\(hint)\(plan) shows the checks and their output",
                                    durationMs: outcome.durationMs)
        }
    }

    /// What the host says it is, against what the inventory needs of it: k3s ships binaries for three
    /// architectures only, and on a Raspberry Pi k3s needs the memory cgroup, which Raspberry Pi OS leaves off.
    static func factsCase(_ facts: HostFacts?, host: InventoryHost, inventory: Inventory, apply: String) -> VerificationCase {
        let title = titles["facts"]!
        guard let facts else {
            return VerificationCase(check: "facts", title: title, passed: false, message: "the host reported no facts",
                                    kind: "facts", fix: "provision facts \(ShellQuote.quote(inventory.path)) -v shows what it answered")
        }
        var problems: [String] = []
        var fixes: [String] = []
        let arch = facts.arch ?? "unknown"
        let k3sHost = inventory.k3s != nil && (host.has(.server) || host.has(.agent))
        if k3sHost && K3s.binaryAsset(arch: facts.arch) == nil {
            problems.append("k3s has no release for architecture \(arch)")
            fixes.append("run k3s on an x86_64, aarch64 or armv7 host, or take the k3s roles off \(host.name)")
        }
        if facts.isRaspberryPi && facts.memoryCgroup != true {
            problems.append("the memory cgroup is off (k3s needs it)")
            fixes.append(apply + " (" + applyHints["pi-cgroups"]! + ")")
        }
        let board = facts.board.map { "board \($0)" } ?? "no board (not a Raspberry Pi)"
        let os = facts.os.prettyName ?? facts.os.id ?? "unknown OS"
        let cgroup = facts.isRaspberryPi ? ", memory cgroup \(facts.memoryCgroup == true ? "on" : "off")" : ""
        let seen = "\(arch), \(os), \(board)\(cgroup)"
        if problems.isEmpty { return VerificationCase(check: "facts", title: title, passed: true, message: seen) }
        return VerificationCase(check: "facts", title: title, passed: false,
                                message: problems.joined(separator: "; ") + " (\(seen))", kind: "facts",
                                fix: fixes.joined(separator: "; "))
    }

    static func extraNodesCase(_ readyMessage: String) -> VerificationCase {
        let title = titles["no-extra-node"]!
        guard let range = readyMessage.range(of: K3sReadyStep.extraNodesWarning) else {
            return VerificationCase(check: "no-extra-node", title: title, passed: true,
                                    message: "kubectl get nodes lists only the inventory's hosts")
        }
        let extra = String(readyMessage[range.upperBound...])
        return VerificationCase(check: "no-extra-node", title: title, passed: false,
                                message: "nodes not in the inventory: \(extra)", kind: "extra-node",
                                fix: "add them to the inventory, or remove them: `k3s kubectl delete node NAME` on the first server after stopping k3s there")
    }
}
