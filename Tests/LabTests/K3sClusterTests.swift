import Foundation
import Journal
import LabSupport
import ProvisionBasics
import Testing

/// The cluster's life on lab hosts: HA servers joining one at a time, a wrong token stopped before anything is
/// touched, an upgrade that keeps the cluster up, drift repaired on the host that drifted only.
@Suite(.serialized) struct K3sClusterTests {
    static let token = "K3sClusterToken-\(UUID().uuidString.prefix(8))"
    static let old = "v1.31.4+k3s1", new = "v1.32.5+k3s1"

    /// The lab's inventory with `servers` servers (the rest agents), an airgap bundle of `version`, and the token
    /// from LAB_K3S_TOKEN when `token` is set (else none: the first server's is generated and read back).
    func inventory(_ lab: Lab, servers: Int, version: String = old, token: Bool = true) throws -> String {
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        for index in 2...max(2, servers) where index <= servers {
            text = text.replacingOccurrences(of: "{name: lab-\(index), address: \(lab.hosts[index - 1].address), roles: [agent]}",
                                             with: "{name: lab-\(index), address: \(lab.hosts[index - 1].address), roles: [server]}")
        }
        text = text.replacingOccurrences(of: "\nhosts:\n", with: """

            k3s: {version: \(version)\(token ? ", token: \"${env:LAB_K3S_TOKEN}\"" : ""), airgap: {directory: \(try bundle(lab, version))}}
            hosts:

            """)
        let path = lab.directory + "/cluster.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func bundle(_ lab: Lab, _ version: String) throws -> String {
        let folder = lab.directory + "/bundle-" + version
        if !FileManager.default.fileExists(atPath: folder) {
            let made = try run(Repo.root + "/scripts/lab.d/k3s/make-bundle", [folder, version])
            #expect(made.status == 0, "\(made.stderr)")
        }
        return folder
    }

    func provision(_ arguments: [String], token: String = token) throws -> ProcessOutput {
        var environment = ProcessInfo.processInfo.environment
        environment["LAB_K3S_TOKEN"] = token
        return try run(Repo.provisionBinary, arguments, environment: environment)
    }

    /// node → "Ready-status version" from the first server.
    func nodes(_ lab: Lab) throws -> [String: String] {
        let path = "{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {.status.nodeInfo.kubeletVersion}{\"\\n\"}{end}"
        let out = try lab.exec("lab-1", "k3s kubectl get nodes -o jsonpath=\(ShellQuote.quote(path))")
        var result: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    /// Each host's k3s-service step as journaled last: (start, end).
    func serviceSteps(_ inventoryPath: String) async throws -> [String: (Date, Date)] {
        let folder = (inventoryPath as NSString).deletingLastPathComponent
        let journal = try #require(try Journal.openExisting(path: folder + "/.provision/cluster.db"))
        var result: [String: (Date, Date)] = [:]
        for step in try await journal.latestSteps() where step.step == "k3s-service" {
            let start = try #require(step.startedAt)
            result[step.host] = (start, start.addingTimeInterval(Double(step.durationMs) / 1000))
        }
        return result
    }

    @Test func threeServersJoinOneAtATimeAndAWrongTokenIsCaughtBeforeAnyHostIsTouched() async throws {
        try await withLab(hosts: 4) { lab in
            let path = try inventory(lab, servers: 3)
            let first = try provision(["apply", path])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let ready = "True \(Self.old)"
            #expect(try nodes(lab) == ["lab-1": ready, "lab-2": ready, "lab-3": ready, "lab-4": ready])
            let roles = try lab.exec("lab-1", "k3s kubectl get node lab-3 -o jsonpath='{.metadata.labels}'").stdout
            #expect(roles.contains("node-role.kubernetes.io/etcd") && roles.contains("node-role.kubernetes.io/control-plane"))
            // The journal shows the join order: each server started after the one before it was Ready.
            let steps = try await serviceSteps(path)
            let (s1, s2, s3) = (try #require(steps["lab-1"]), try #require(steps["lab-2"]), try #require(steps["lab-3"]))
            #expect(s1.1 <= s2.0 && s2.1 <= s3.0, "\(steps)")
            let agent = try #require(steps["lab-4"])
            #expect(s3.1 <= agent.0, "agents join once the servers are up")

            // The same inventory with someone else's token: refused on the first server, before any change.
            let events = lab.hosts.map { lab.serviceEvents($0.name) }
            let configs = try lab.hosts.map { try lab.exec($0.name, "sha256sum /etc/rancher/k3s/config.yaml").stdout }
            let wrong = try provision(["apply", path], token: "not-the-cluster-token")
            #expect(wrong.status == 1)
            #expect(wrong.stderr.contains("lab-1: k3s-token: failed — k3s.token in the inventory is not the token of the cluster already running on lab-1"),
                    "\(wrong.stderr)")
            #expect(!wrong.stdout.contains("not-the-cluster-token") && !wrong.stderr.contains("not-the-cluster-token"))
            #expect(lab.hosts.map { lab.serviceEvents($0.name) } == events)
            #expect(try lab.hosts.map { try lab.exec($0.name, "sha256sum /etc/rancher/k3s/config.yaml").stdout } == configs)
            #expect(try nodes(lab) == ["lab-1": ready, "lab-2": ready, "lab-3": ready, "lab-4": ready])
        }
    }

    @Test func anUpgradeTakesOneServerDownAtATimeThenDrainsAgentsAndEndsReadyOnTheNewVersion() async throws {
        try await withLab(hosts: 5) { lab in
            let path = try inventory(lab, servers: 3)
            let first = try provision(["apply", path])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            // Watch every server's k3s unit while the upgrade runs (real processes: blocked test threads cannot
            // delay them).
            let watch = "for i in $(seq 1 3000); do echo \"$(date +%s.%N) $(systemctl is-active k3s)\"; sleep 0.05; done"
            var watchers = try lab.hosts.prefix(3).map { host in
                try Background("/bin/sh", ["-c", "\(ShellQuote.join([Repo.labScript, "exec", "--dir", lab.directory, host.name, "--", "sh", "-c", watch])) > \(lab.directory)/active-\(host.name).txt"])
            }
            // And the first server's view of cordoned nodes.
            let cordons = "for i in $(seq 1 1500); do echo \"$(k3s kubectl get nodes -o jsonpath='{.items[*].spec.unschedulable}' 2>/dev/null)\"; sleep 0.1; done"
            watchers.append(try Background("/bin/sh", ["-c", "\(ShellQuote.join([Repo.labScript, "exec", "--dir", lab.directory, "lab-1", "--", "sh", "-c", cordons])) > \(lab.directory)/cordoned.txt"]))
            var text = try String(contentsOfFile: path, encoding: .utf8)
            text = text.replacingOccurrences(of: Self.old, with: Self.new)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            _ = try bundle(lab, Self.new)
            let upgrade = try provision(["apply", path])
            #expect(upgrade.status == 0, "\(upgrade.stdout)\(upgrade.stderr)")
            for watcher in watchers { watcher.kill(SIGTERM) }
            let ready = "True \(Self.new)"
            #expect(try nodes(lab) == ["lab-1": ready, "lab-2": ready, "lab-3": ready, "lab-4": ready, "lab-5": ready])

            // Never two servers down at once, in the watchers' samples or in the journal.
            var down: [(Double, String)] = []
            for host in lab.hosts.prefix(3) {
                let samples = try String(contentsOfFile: "\(lab.directory)/active-\(host.name).txt", encoding: .utf8)
                for line in samples.split(separator: "\n") {
                    let parts = line.split(separator: " ")
                    if parts.count == 2, parts[1] != "active", let time = Double(parts[0]) { down.append((time, host.name)) }
                }
            }
            #expect(!down.isEmpty, "the watchers saw the servers restart")
            for (time, host) in down {
                let others = Set(down.filter { abs($0.0 - time) < 0.02 && $0.1 != host }.map(\.1))
                #expect(others.isEmpty, "\(host) and \(others) down together at \(time)")
            }
            let steps = try await serviceSteps(path)
            let servers = try ["lab-1", "lab-2", "lab-3"].map { try #require(steps[$0]) }
            #expect(servers[0].1 <= servers[1].0 && servers[1].1 <= servers[2].0, "\(steps)")
            // Agents after the servers, drained one at a time (--max-unavailable 1), none left cordoned.
            let agents = try ["lab-4", "lab-5"].map { try #require(steps[$0]) }
            #expect(agents.allSatisfy { servers[2].1 <= $0.0 }, "\(steps)")
            let samples = try String(contentsOfFile: "\(lab.directory)/cordoned.txt", encoding: .utf8).split(separator: "\n")
            let cordonedAtOnce = samples.map { $0.split(separator: " ").filter { $0 == "true" }.count }
            #expect(cordonedAtOnce.max() == 1, "\(samples)")
            let cordoned = try lab.exec("lab-1", "k3s kubectl get nodes -o jsonpath='{.items[*].spec.unschedulable}'").stdout
            #expect(!cordoned.contains("true"))
            #expect(upgrade.stdout.contains("lab-4") && !upgrade.stdout.contains(Self.token))

            let again = try provision(["plan", path, "--detailed-exitcode"])
            #expect(again.status == 0, "\(again.stdout)")
        }
    }

    @Test func aGeneratedTokenIsReadBackAndDriftIsRepairedOnlyWhereItHappened() async throws {
        try await withLab(hosts: 3) { lab in
            let path = try inventory(lab, servers: 1, token: false)
            let first = try provision(["apply", path, "-v"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let ready = "True \(Self.old)"
            #expect(try nodes(lab) == ["lab-1": ready, "lab-2": ready, "lab-3": ready])
            // The generated token never left the hosts: not in the output, the logs or the journal.
            let file = try lab.exec("lab-1", "cat /var/lib/rancher/k3s/server/token").stdout
            let password = String(try #require(file.split(separator: ":").last)).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(password.count >= 32)
            #expect(!first.stdout.contains(password) && !first.stderr.contains(password))
            let journal = lab.directory + "/.provision"
            for name in try FileManager.default.contentsOfDirectory(atPath: journal) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: journal + "/" + name))
                #expect(bytes.range(of: Data(password.utf8)) == nil, "\(name)")
            }
            let second = try provision(["plan", path, "--detailed-exitcode"])
            #expect(second.status == 0, "read back, the token renders the same config.yaml: \(second.stdout)")

            // Drift: one agent stopped, the other's unit deleted. The plan names each; apply touches only them.
            _ = try lab.exec("lab-2", "systemctl stop k3s-agent")
            _ = try lab.exec("lab-3", "rm /etc/systemd/system/k3s-agent.service && systemctl daemon-reload")
            let before = lab.serviceEvents("lab-1")
            let plan = try provision(["plan", path, "--detailed-exitcode", "--output", "json"])
            #expect(plan.status == 2)
            let pending = try pendingSteps(plan.stdout)
            #expect(pending == ["lab-2": ["k3s-service"], "lab-3": ["k3s-service"]], "\(plan.stdout)")
            let repair = try provision(["apply", path])
            #expect(repair.status == 0, "\(repair.stdout)\(repair.stderr)")
            #expect(lab.serviceEvents("lab-1") == before)
            #expect(try lab.exec("lab-2", "systemctl is-active k3s-agent").stdout == "active\n")
            #expect(try lab.exec("lab-3", "systemctl is-enabled k3s-agent").stdout == "enabled\n")
            #expect(try provision(["plan", path, "--detailed-exitcode"]).status == 0)
        }
    }

    /// host → ids of its pending steps, from `plan --output json`.
    func pendingSteps(_ json: String) throws -> [String: [String]] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        var result: [String: [String]] = [:]
        for host in object?["hosts"] as? [[String: Any]] ?? [] {
            let steps = (host["steps"] as? [[String: Any]] ?? []).filter { $0["status"] as? String == "pending" }
            if !steps.isEmpty, let name = host["name"] as? String { result[name] = steps.compactMap { $0["id"] as? String } }
        }
        return result
    }
}
