import Foundation
import LabSupport
import ProvisionBasics
import Testing

/// Runner hosts get Docker, gitlab-runner and runners registered in the lab's fake GitLab, once: re-runs create
/// nothing, a runner deleted in GitLab comes back, GitLab's failures are retried, a token without the scope is named.
@Suite(.serialized) struct RunnerApplyTests {
    static let k3sToken = "RunnerLabK3s-\(UUID().uuidString.prefix(8))"

    /// The lab's inventory with runners on every host but the first, Docker from Debian, gitlab-runner 17.7.1 from
    /// the lab's mirror, the fake GitLab, and a k3s cluster when `k3s`.
    func inventory(_ lab: Lab, k3s: Bool, runnerHosts: [String]) throws -> String {
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        // With k3s, runner hosts are agents too; without, they are runners only.
        for name in runnerHosts {
            let address = try #require(lab.hosts.first { $0.name == name }).address
            for role in ["agent", "server"] {
                text = text.replacingOccurrences(of: "{name: \(name), address: \(address), roles: [\(role)]}",
                                                 with: "{name: \(name), address: \(address), roles: [\(k3s ? role + ", " : "")runner]}")
            }
        }
        var blocks = """

            docker: {package: docker.io}
            gitlab:
              url: \(lab.gitlabURL)
              token: "${env:LAB_GITLAB_TOKEN}"
              runnerPackage: {version: 17.7.1, aptRepository: \(lab.runnerRepositoryURL)}
              runners:
                - {name: docker, projectId: 200, tags: [docker, lab], image: "docker:27", privileged: true, volumes: [/certs/client, /cache]}

            """
        if k3s {
            let bundle = lab.directory + "/bundle"
            #expect(try run(Repo.root + "/scripts/lab.d/k3s/make-bundle", [bundle, "v1.31.4+k3s1"]).status == 0)
            blocks += "k3s: {version: v1.31.4+k3s1, token: \"${env:LAB_K3S_TOKEN}\", airgap: {directory: \(bundle)}}\n"
        }
        text = text.replacingOccurrences(of: "\nhosts:\n", with: blocks + "hosts:\n")
        let path = lab.directory + "/runners.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func provision(_ lab: Lab, _ arguments: [String], token: String = "project-bot") throws -> ProcessOutput {
        var environment = ProcessInfo.processInfo.environment
        environment["LAB_GITLAB_TOKEN"] = try lab.gitlabToken(token)
        environment["LAB_K3S_TOKEN"] = Self.k3sToken
        return try run(Repo.provisionBinary, arguments, environment: environment)
    }

    func runners(_ lab: Lab, secrets: Bool = false) throws -> [[String: Any]] {
        try lab.gitlabState(secrets: secrets)["runners"] as? [[String: Any]] ?? []
    }

    @Test func twoRunnerAgentsConvergeOnceAndADeletedRunnerComesBackAlone() async throws {
        try await withLab(hosts: 3) { lab in
            let path = try inventory(lab, k3s: true, runnerHosts: ["lab-2", "lab-3"])
            let sample = "for i in $(seq 1 1200); do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; sleep 0.05; done"
            let watchers = try lab.hosts.map { host in
                try Background("/bin/sh", ["-c", "\(ShellQuote.join([Repo.labScript, "exec", "--dir", lab.directory, host.name, "--", "sh", "-c", sample])) > \(lab.directory)/argv-\(host.name).txt"])
            }
            let first = try provision(lab, ["apply", path])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            for host in ["lab-2", "lab-3"] {
                #expect(try lab.exec(host, "systemctl is-active docker gitlab-runner").stdout == "active\nactive\n")
                #expect(try lab.exec(host, "stat -c '%a %U' /etc/gitlab-runner/config.toml").stdout == "600 root\n")
            }
            var created = try runners(lab)
            #expect(created.compactMap { $0["description"] as? String }.sorted() == ["lab-2-docker", "lab-3-docker"])
            for runner in created {
                #expect(runner["tag_list"] as? [String] == ["docker", "lab"])
                let id = try #require(runner["id"] as? Int)
                #expect(try lab.waitForGitLabRunner(id: id, timeout: 15)?["status"] as? String == "online")
            }
            let tokens = try runners(lab, secrets: true).compactMap { $0["token"] as? String } + [try lab.gitlabToken("project-bot")]
            #expect(tokens.count == 3)

            // A second apply creates nothing in GitLab and rewrites no config.toml.
            let configs = try ["lab-2", "lab-3"].map { try lab.exec($0, "sha256sum /etc/gitlab-runner/config.toml").stdout }
            let second = try provision(lab, ["apply", path, "--output", "json"])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(!second.stdout.contains("\"changed\""), "\(second.stdout)")
            #expect(try runners(lab).count == 2)
            #expect(try ["lab-2", "lab-3"].map { try lab.exec($0, "sha256sum /etc/gitlab-runner/config.toml").stdout } == configs)

            // Deleted in GitLab: exactly one new runner, the stale block gone.
            let lab2 = try #require(created.first { $0["description"] as? String == "lab-2-docker" }?["id"] as? Int)
            let oldToken = try #require(try runners(lab, secrets: true).first { $0["id"] as? Int == lab2 }?["token"] as? String)
            try lab.deleteGitLabRunner(id: lab2)
            let repair = try provision(lab, ["apply", path])
            #expect(repair.status == 0, "\(repair.stdout)\(repair.stderr)")
            created = try runners(lab)
            #expect(created.count == 2 && !created.contains { $0["id"] as? Int == lab2 })
            let config = try lab.exec("lab-2", "cat /etc/gitlab-runner/config.toml").stdout
            #expect(!config.contains(oldToken) && config.components(separatedBy: "[[runners]]").count == 2)
            #expect(try lab.exec("lab-3", "sha256sum /etc/gitlab-runner/config.toml").stdout == configs[1])

            // No token in any output, journal row or remote process argument list.
            for watcher in watchers { watcher.kill(SIGTERM) }
            let everything = [first.stdout, first.stderr, second.stdout, second.stderr, repair.stdout, repair.stderr]
            let journal = lab.directory + "/.provision"
            var stored: [Data] = []
            for name in try FileManager.default.contentsOfDirectory(atPath: journal) {
                stored.append(try Data(contentsOf: URL(fileURLWithPath: journal + "/" + name)))
            }
            let argv = try lab.hosts.map { try String(contentsOfFile: "\(lab.directory)/argv-\($0.name).txt", encoding: .utf8) }
            for token in tokens + [oldToken] {
                #expect(!everything.contains { $0.contains(token) })
                #expect(!stored.contains { $0.range(of: Data(token.utf8)) != nil })
                #expect(!argv.contains { $0.contains(token) })
            }
            #expect(argv.contains { $0.contains("gitlab-runner") }, "the sampling saw the runner hosts at work")
        }
    }

    @Test func gitLabFailuresAreRetriedAndATokenWithoutTheScopeIsNamedWithNothingHalfRegistered() async throws {
        try await withLab(hosts: 2) { lab in
            let path = try inventory(lab, k3s: false, runnerHosts: ["lab-1", "lab-2"])
            // No create_runner scope: refused, nothing created in GitLab or written on the hosts.
            let refused = try provision(lab, ["apply", path], token: "owner-read-api")
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("create_runner"), "\(refused.stderr)")
            #expect(try runners(lab).isEmpty)
            #expect(try lab.exec("lab-1", "grep -c '\\[\\[runners\\]\\]' /etc/gitlab-runner/config.toml || true").stdout.hasPrefix("0") )

            // GitLab failing the next 3 creations with 500, then throttling with Retry-After: the run still succeeds.
            try lab.injectGitLabFault(method: "POST", path: "/api/v4/user/runners", status: 500, count: 3)
            _ = try lab.gitlabControl("POST", "/faults", json: #"{"method":"POST","path":"/api/v4/runners/verify","status":429,"retry_after":1,"count":1}"#)
            let retried = try provision(lab, ["apply", path])
            #expect(retried.status == 0, "\(retried.stdout)\(retried.stderr)")
            #expect(try runners(lab).count == 2)
            let faulted = try lab.gitlabLog().filter { $0["fault"] as? Bool == true }
            #expect(faulted.count == 4, "\(faulted)")
        }
    }

    /// A run killed after GitLab created its runners but before config.toml had them leaves runners nobody has the
    /// token of. The next plan shows them deleted and the next apply deletes them: one runner per host, not two.
    @Test func runnersAKilledRunLeftInGitLabAreDeletedBeforeNewOnesAreCreated() async throws {
        try await withLab(hosts: 2) { lab in
            let path = try inventory(lab, k3s: false, runnerHosts: ["lab-1", "lab-2"])
            // Docker and gitlab-runner in place (a token that cannot create runners stops at the registration).
            #expect(try provision(lab, ["apply", path], token: "owner-read-api").status == 1)
            let before = try lab.gitlabLog().compactMap { $0["seq"] as? Int }.max() ?? 0

            // GitLab takes 4 s to create each runner; the run is killed meanwhile, and GitLab creates them anyway.
            _ = try lab.gitlabControl("POST", "/faults", json: #"{"method":"POST","path":"/api/v4/user/runners","latency":4,"count":2}"#)
            let killed = Process()
            killed.executableURL = URL(fileURLWithPath: Repo.provisionBinary)
            killed.arguments = ["apply", path]
            var environment = ProcessInfo.processInfo.environment
            environment["LAB_GITLAB_TOKEN"] = try lab.gitlabToken("project-bot")
            killed.environment = environment
            killed.standardOutput = FileHandle.nullDevice
            killed.standardError = FileHandle.nullDevice
            try killed.run()
            func requests(_ method: String, _ path: String) throws -> Int {
                try lab.gitlabLog().filter {
                    ($0["seq"] as? Int ?? 0) > before && $0["method"] as? String == method && $0["path"] as? String == path
                }.count
            }
            // Both hosts looked for leftovers; their creations follow at once and wait in GitLab.
            let lookedUp = Date()
            while try requests("GET", "/api/v4/runners") < 2 && Date().timeIntervalSince(lookedUp) < 60 {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(1))
            kill(killed.processIdentifier, SIGKILL)
            killed.waitUntilExit()
            let created = Date()
            while try runners(lab).count < 2 && Date().timeIntervalSince(created) < 15 {
                try await Task.sleep(for: .milliseconds(200))
            }
            let left = try runners(lab)
            #expect(left.count == 2 && left.allSatisfy { $0["status"] as? String == "never_contacted" }, "\(left)")
            #expect(try lab.exec("lab-1", "grep -c '\\[\\[runners\\]\\]' /etc/gitlab-runner/config.toml || true").stdout.hasPrefix("0"))

            let leftIDs = Set(left.compactMap { $0["id"] as? Int })
            let plan = try provision(lab, ["plan", path])
            for id in leftIDs {
                #expect(plan.stdout.contains("(#\(id)) in GitLab: an earlier run created it but never wrote it to config.toml"),
                        "\(plan.stdout)")
            }
            #expect(try runners(lab).count == 2, "plan changes nothing")

            let applied = try provision(lab, ["apply", path])
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            let now = try runners(lab)
            #expect(now.count == 2, "\(now)")
            #expect(leftIDs.isDisjoint(with: now.compactMap { $0["id"] as? Int }))
            #expect(try requests("DELETE", "/api/v4/runners/\(leftIDs.min() ?? 0)") == 1)
            #expect(try provision(lab, ["plan", path, "--detailed-exitcode"]).status == 0)
        }
    }
}
