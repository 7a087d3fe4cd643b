import Foundation
import Inventory
import Journal
import ProvisionBasics
import SSHTransport
import Steps

/// Why a reset is refused before anything is touched.
public struct ResetRefusal: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Which hosts lose k3s, in which order, and where their nodes are drained: the install in reverse. Agents go
/// first, then joining servers, the first server last; a node leaving a cluster that stays is drained and deleted
/// from it on a server that stays.
public struct ResetPlan: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable {
        case agent, server
        case firstServer = "first server"
    }

    public struct Entry: Sendable, Equatable {
        public var host: InventoryHost
        public var role: Role
        /// The staying server that drains and deletes this host's node; nil when the whole cluster goes.
        public var drainOn: InventoryHost?
    }

    public var entries: [Entry]
    /// The service account's kubeconfig variable in GitLab, when the whole cluster goes: it would point at a cluster
    /// that no longer exists (the service account goes with the cluster's datastore).
    public var kubeconfigVariable: GitLabRequest?

    /// The k3s hosts named (every k3s host when `names` is empty). Refuses names without a k3s role, and the first
    /// server while other k3s hosts stay: they join it and would be left without a cluster.
    public init(inventory: Inventory, names: [String]) throws(ResetRefusal) {
        let k3sHosts = inventory.hosts.filter { $0.has(.server) || $0.has(.agent) }
        guard !k3sHosts.isEmpty else {
            throw ResetRefusal("\(inventory.path) has no k3s host (role server or agent); there is nothing to reset")
        }
        let notK3s = names.filter { name in !k3sHosts.contains { $0.name == name } }
        guard notK3s.isEmpty else {
            throw ResetRefusal("\(notK3s.joined(separator: ", ")) has no k3s role (server or agent) in \(inventory.path); "
                + "name only k3s hosts with --host")
        }
        let chosen = names.isEmpty ? k3sHosts : k3sHosts.filter { names.contains($0.name) }
        let staying = k3sHosts.filter { host in !chosen.contains { $0.name == host.name } }
        let first = inventory.firstServer
        if let first, chosen.contains(where: { $0.name == first.name }) && !staying.isEmpty {
            let others = staying.map(\.name)
            let hosts = others.map { "--host \($0)" }.joined(separator: " ")
            throw ResetRefusal("\(first.name) is the first server, and \(others.joined(separator: ", ")) "
                + "\(others.count == 1 ? "joins" : "join") its cluster and would stay without one; reset "
                + "\(others.count == 1 ? "it" : "them") first (provision reset \(inventory.path) \(hosts)), or every k3s "
                + "host at once (provision reset \(inventory.path), without --host)")
        }
        let drainOn = inventory.servers.first { server in staying.contains { $0.name == server.name } }
        let agents = chosen.filter { !$0.has(.server) }
        let joining = chosen.filter { $0.has(.server) && $0.name != first?.name }
        let last = chosen.filter { $0.name == first?.name }
        entries = agents.map { Entry(host: $0, role: .agent, drainOn: drainOn) }
            + joining.map { Entry(host: $0, role: .server, drainOn: drainOn) }
            + last.map { Entry(host: $0, role: .firstServer, drainOn: nil) }
        if !last.isEmpty, let account = inventory.gitlab?.serviceAccount {
            kubeconfigVariable = .deleteVariable(owner: GitLabKubeconfigVariableStep.owner(account),
                                                 key: account.variableKey, environmentScope: account.environmentScope)
        }
    }

    /// What will be removed from which hosts, for the confirmation.
    public var summary: String {
        var text = "k3s will be removed from \(entries.count) host(s):\n"
        for entry in entries {
            let node = entry.host.nodeName
            let cluster = entry.drainOn.map { "drain node \(node) and delete it from the cluster (on \($0.name)); " }
                ?? "no drain: the cluster goes too; "
            text += "  \(entry.host.name) (\(entry.role.rawValue)): \(cluster)run its k3s uninstall script (k3s service, "
                + "binary, /etc/rancher/k3s, /var/lib/rancher/k3s with its pods' local data); remove provision's "
                + "k3s files; forget its steps in the journal\n"
        }
        if let kubeconfigVariable {
            text += "  then \(kubeconfigVariable.summary): it holds the kubeconfig of this cluster\n"
        }
        return text
    }
}

/// How one host's reset ended.
public struct ResetOutcome: Sendable, Equatable {
    public enum Result: Sendable, Equatable {
        case reset
        /// `step` is the part that failed ("drain", "uninstall", ...).
        case failed(step: String, message: String)
        case notStarted(String)
    }

    public var host: String
    public var result: Result

    public var succeeded: Bool { result == .reset }
}

/// Carries out a reset plan host after host, saying what it did through `report` ("lab-2: drained node lab-2 on
/// lab-1") as it goes.
public struct Reset: Sendable {
    public static let uninstallScripts = ["/usr/local/bin/k3s-agent-uninstall.sh", "/usr/local/bin/k3s-uninstall.sh"]
    /// kubectl's own --timeout for a drain; the SSH command gets a minute more.
    public static let drainTimeout = 120
    public static let uninstallTimeout = 300.0

    public let pool: ConnectionPool
    public let journal: Journal?
    public let report: @Sendable (String) -> Void

    public init(pool: ConnectionPool, journal: Journal?, report: @escaping @Sendable (String) -> Void) {
        self.pool = pool
        self.journal = journal
        self.report = report
    }

    /// Deletes the plan's kubeconfig variable in GitLab once every host is reset; nil when done (or nothing to do),
    /// else why not.
    public func removeGitLabVariable(_ plan: ResetPlan, outcomes: [ResetOutcome],
                                     gitlab: (any GitLabGateway)?) async -> String? {
        guard let request = plan.kubeconfigVariable else { return nil }
        guard outcomes.allSatisfy(\.succeeded) else {
            return "not done: \(request.summary), since the cluster is not gone; reset again"
        }
        guard let gitlab else { return "not done: \(request.summary): no GitLab access configured" }
        do {
            _ = try await gitlab.perform(request)
            report("GitLab: \(request.summary): done")
            return nil
        } catch {
            return "\(request.summary) failed: \(error); delete it in GitLab (Settings > CI/CD > Variables) or reset again"
        }
    }

    public func run(_ plan: ResetPlan) async -> [ResetOutcome] {
        var outcomes: [ResetOutcome] = []
        for entry in plan.entries {
            // The first server goes last, and only once nothing that joins it is left behind.
            if entry.role == .firstServer, let failed = outcomes.first(where: { !$0.succeeded }) {
                outcomes.append(ResetOutcome(host: entry.host.name, result: .notStarted(
                    "not reset: the first server goes once every other host is reset, and \(failed.host) was not; "
                    + "fix \(failed.host) and reset again")))
                continue
            }
            outcomes.append(ResetOutcome(host: entry.host.name, result: await reset(entry)))
        }
        return outcomes
    }

    private struct Failure: Error {
        var step: String
        var message: String
    }

    private func reset(_ entry: ResetPlan.Entry) async -> ResetOutcome.Result {
        let host = entry.host
        func say(_ text: String) { report("\(host.name): \(text)") }
        do {
            let connection = try await step("connect", on: host) { try await pool.connection(for: host) }
            let probe = try await step("check", on: host) {
                try await connection.run(Self.probe, privileged: true, timeout: 60)
            }
            guard probe.succeeded else {
                throw Failure(step: "check", message: "`\(Self.probe)` failed (\(probe.statusDescription))")
            }
            let scripts = Self.installedScripts(probe.stdoutText)
            if let server = entry.drainOn {
                try await removeNode(host.nodeName, on: server, drain: !scripts.isEmpty, say: say)
            }
            if scripts.isEmpty { say("k3s is not installed on \(host.name); nothing to remove") }
            for script in scripts {
                let result = try await step("uninstall", on: host) {
                    try await connection.run(ShellQuote.quote(script), privileged: true, timeout: Self.uninstallTimeout)
                }
                guard result.succeeded else {
                    throw Failure(step: "uninstall", message: "`\(script)` failed (\(result.statusDescription)): "
                        + "\(Self.lastLine(result.stderrText)); run it on \(host.name) to see why, then reset again")
                }
                say("ran \(script)")
            }
            let cleanup = try await step("cleanup", on: host) {
                try await connection.run(Self.cleanup, privileged: true, timeout: 60)
            }
            let (removed, left) = Self.cleanupResult(cleanup.stdoutText)
            for path in removed { say("removed \(path)") }
            guard cleanup.succeeded, left.isEmpty else {
                let what = left.isEmpty ? "(\(cleanup.statusDescription)) \(Self.lastLine(cleanup.stderrText))"
                    : "\(left.joined(separator: ", ")) still there"
                throw Failure(step: "cleanup", message: "k3s is not gone: \(what); remove it by hand, then reset again")
            }
            if let journal {
                do { try await journal.forget(host: host.name) } catch {
                    throw Failure(step: "journal", message: "k3s is removed, but its steps could not be forgotten: \(error)")
                }
                say("forgot its steps in the journal; the next apply installs k3s again")
            }
            say("k3s removed")
            return .reset
        } catch let failure as Failure {
            return .failed(step: failure.step, message: failure.message)
        } catch {
            return .failed(step: "reset", message: Converger.describe(error, host: host.name))
        }
    }

    /// Drains the node (only when the host still runs k3s: a node with no kubelet behind it would hold the drain
    /// until its timeout) and deletes it, on `server`. A node already gone is fine.
    private func removeNode(_ node: String, on server: InventoryHost, drain: Bool,
                            say: (String) -> Void) async throws {
        let connection = try await step("drain", on: server, elsewhere: true) { try await pool.connection(for: server) }
        if drain {
            let result = try await step("drain", on: server, elsewhere: true) {
                try await connection.run(Self.drainCommand(node), privileged: true,
                                         timeout: Double(Self.drainTimeout + 60))
            }
            if Self.nodeIsGone(result, node: node) {
                say("node \(node) is not in the cluster (on \(server.name)); nothing to drain or delete")
                return
            }
            guard result.succeeded else {
                throw Failure(step: "drain", message: "`\(Self.drainCommand(node))` on \(server.name) failed "
                    + "(\(result.statusDescription)): \(Self.lastLine(result.stderrText)); fix what blocks the drain, "
                    + "or delete the node yourself (k3s kubectl delete node \(node)), then reset again")
            }
            let evicted = result.stdoutText.split(separator: "\n").filter { $0.hasSuffix(" evicted") }.count
            say("drained node \(node) (on \(server.name)): \(evicted) pod(s) evicted")
        }
        let result = try await step("delete node", on: server, elsewhere: true) {
            try await connection.run(Self.deleteCommand(node), privileged: true, timeout: 60)
        }
        if Self.nodeIsGone(result, node: node) {
            say("node \(node) is not in the cluster (on \(server.name)); nothing to delete")
            return
        }
        guard result.succeeded else {
            throw Failure(step: "delete node", message: "`\(Self.deleteCommand(node))` on \(server.name) failed "
                + "(\(result.statusDescription)): \(Self.lastLine(result.stderrText)); reset again once "
                + "\(server.name) answers")
        }
        say("deleted node \(node) from the cluster (on \(server.name))")
    }

    /// Runs `body` on `host`, naming `step` (and the host, when it is not the one being reset) if the transport fails.
    private func step<T>(_ step: String, on host: InventoryHost, elsewhere: Bool = false,
                         _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch {
            throw Failure(step: step, message: (elsewhere ? "on \(host.name): " : "") + Converger.describe(error, host: host.name))
        }
    }

    // MARK: Commands and what they answer (pure)

    /// The uninstall scripts present, agent first: a host that was both runs both, the last removing k3s itself.
    public static let probe = uninstallScripts.map { "[ ! -x \($0) ] || echo \($0)" }.joined(separator: "; ") + "; true"

    public static func installedScripts(_ output: String) -> [String] {
        let lines = Set(output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        return uninstallScripts.filter(lines.contains)
    }

    public static func drainCommand(_ node: String) -> String {
        "k3s kubectl drain \(ShellQuote.quote(node)) --ignore-daemonsets --delete-emptydir-data --force "
            + "--timeout=\(drainTimeout)s"
    }

    public static func deleteCommand(_ node: String) -> String {
        "k3s kubectl delete node \(ShellQuote.quote(node))"
    }

    /// kubectl's answer for a node that does not exist: `Error from server (NotFound): nodes "x" not found`.
    public static func nodeIsGone(_ result: CommandResult, node: String) -> Bool {
        !result.succeeded && result.stderrText.contains("(NotFound): nodes \"\(node)\" not found")
    }

    /// What provision itself put on the host for k3s (K3s*Step), whatever the uninstall script left, and the
    /// folders they leave empty; then what is still there of k3s. Prints `removed PATH` and `left PATH`.
    public static var cleanup: String {
        let q = ShellQuote.quote
        let files = [K3s.installScript, K3s.configFile, K3s.configFile + ".provision.bak"]
        let leftovers = [K3s.installScript, K3s.configFile].map(SSHConnection.temporaryPattern(for:))
        let images = q(K3s.imagesFolder) + "/k3s-airgap-images-*"
        let folders = [(K3s.installScript as NSString).deletingLastPathComponent, K3s.imagesFolder,
                       (K3s.imagesFolder as NSString).deletingLastPathComponent,
                       (K3s.configFile as NSString).deletingLastPathComponent]
        let installed = ["/usr/local/bin/k3s", "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service"]
        return "for f in \(files.map(q).joined(separator: " ")) \(leftovers.joined(separator: " ")) \(images); do "
            + "if [ -e \"$f\" ]; then rm -f \"$f\" && echo \"removed $f\"; fi; done; "
            + "for d in \(folders.map(q).joined(separator: " ")); do rmdir \"$d\" 2>/dev/null || true; done; "
            + "for f in \(installed.map(q).joined(separator: " ")); do [ ! -e \"$f\" ] || echo \"left $f\"; done; true"
    }

    public static func cleanupResult(_ output: String) -> (removed: [String], left: [String]) {
        var removed: [String] = [], left: [String] = []
        for line in output.split(separator: "\n") {
            if line.hasPrefix("removed ") { removed.append(String(line.dropFirst(8))) }
            if line.hasPrefix("left ") { left.append(String(line.dropFirst(5))) }
        }
        return (removed, left)
    }

    static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    }
}
