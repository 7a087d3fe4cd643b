import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import LabSupport
import Testing

/// `provision verify` on a k3s cluster made by apply (one server, one agent): green after apply, and a stopped
/// agent or an edited config fails exactly the check that names it, in a JUnit report GitLab can read.
@Suite(.serialized) struct VerifyTests {
    /// host → (check → failed), from the JUnit report; the totals must match the cases.
    func suites(_ path: String) throws -> [String: [String: Bool]] {
        let document = try XMLDocument(contentsOf: URL(fileURLWithPath: path), options: [])
        let root = try #require(document.rootElement())
        #expect(root.name == "testsuites")
        var result: [String: [String: Bool]] = [:]
        var total = 0
        var failed = 0
        for suite in root.elements(forName: "testsuite") {
            let host = try #require(suite.attribute(forName: "name")?.stringValue)
            var cases: [String: Bool] = [:]
            for testcase in suite.elements(forName: "testcase") {
                let name = try #require(testcase.attribute(forName: "name")?.stringValue)
                #expect(testcase.attribute(forName: "classname")?.stringValue == host)
                cases[String(name.prefix { $0 != ":" })] = !testcase.elements(forName: "failure").isEmpty
            }
            let failures = cases.values.filter { $0 }.count
            #expect(suite.attribute(forName: "tests")?.stringValue == "\(cases.count)")
            #expect(suite.attribute(forName: "failures")?.stringValue == "\(failures)")
            total += cases.count
            failed += failures
            result[host] = cases
        }
        #expect(root.attribute(forName: "tests")?.stringValue == "\(total)")
        #expect(root.attribute(forName: "failures")?.stringValue == "\(failed)")
        return result
    }

    func failing(_ cases: [String: Bool]?) -> [String] { (cases ?? [:]).filter(\.value).map(\.key).sorted() }

    @Test func aConvergedClusterPassesAndAStoppedAgentOrAnEditedConfigFailsItsCheck() async throws {
        try await withLab(hosts: 2) { lab in
            let cluster = try K3sCluster(lab)
            try cluster.apply()
            let journalBefore = try cluster.provision(["status", cluster.inventory, "--output", "json"]).stdout
            let report = lab.directory + "/verify.xml"
            let green = try cluster.provision(["verify", cluster.inventory, "--junit", report])
            #expect(green.status == 0, "\(green.stdout)\(green.stderr)")
            #expect(green.stdout.contains("Verify: all "), "\(green.stdout)")
            let passing = try suites(report)
            #expect(passing.keys.sorted() == ["lab-1", "lab-2"])
            #expect(passing.values.allSatisfy { failing($0).isEmpty })
            for check in ["ssh", "facts", "k3s-config", "k3s-service", "no-drift"] {
                #expect(passing["lab-2"]?[check] == false, "lab-2 lacks \(check): \(passing["lab-2"] ?? [:])")
            }
            #expect(passing["lab-1"]?["k3s-ready"] == false && passing["lab-1"]?["no-extra-node"] == false)

            // Verify is read-only: it journals no run and starts or restarts nothing.
            #expect(try cluster.provision(["status", cluster.inventory, "--output", "json"]).stdout == journalBefore)
            let events = lab.serviceEvents("lab-2")

            _ = try lab.exec("lab-2", "systemctl stop k3s-agent")
            let stopped = try cluster.provision(["verify", cluster.inventory, "--junit", report])
            #expect(stopped.status == 1, "\(stopped.stdout)\(stopped.stderr)")
            #expect(stopped.stdout.contains("✘ k3s-service: "), "\(stopped.stdout)")
            #expect(stopped.stdout.contains("fix: provision apply \(cluster.inventory) --host lab-2"), "\(stopped.stdout)")
            let afterStop = try suites(report)
            #expect(failing(afterStop["lab-2"]) == ["k3s-service", "no-drift"])
            #expect(failing(afterStop["lab-1"]) == [])
            #expect(lab.serviceEvents("lab-2").count == events.count + 1)  // only our stop

            _ = try lab.exec("lab-2", "systemctl start k3s-agent")
            _ = try lab.exec("lab-2", "echo 'node-label: [\"edited=by-hand\"]' >> /etc/rancher/k3s/config.yaml")
            let edited = try cluster.provision(["verify", cluster.inventory, "--junit", report, "--host", "lab-2"])
            #expect(edited.status == 1, "\(edited.stdout)\(edited.stderr)")
            let afterEdit = try suites(report)
            #expect(afterEdit.keys.sorted() == ["lab-2"])
            #expect(failing(afterEdit["lab-2"]).contains("k3s-config"), "\(edited.stdout)")
            #expect(!failing(afterEdit["lab-2"]).contains("ssh"))
        }
    }

    /// The quickstart's classic lab: lab-1 server, lab-2 agent + Docker + a runner, lab-3 agent, the GitLab service
    /// account and its KUBECONFIG variable. Green after apply; then one break at a time fails exactly its check (and
    /// "no drift", since apply would repair it), and an apply puts it back.
    @Test func theClassicLabPassesAndEachBreakInGitLabOrTheClusterFailsExactlyItsCheck() async throws {
        try await withLab(hosts: 3) { lab in
            let cluster = try K3sCluster(lab)
            var text = try String(contentsOfFile: cluster.inventory, encoding: .utf8)
            let lab2 = "{name: lab-2, address: \(lab.hosts[1].address), roles: ["
            text = text.replacingOccurrences(of: lab2 + "agent]}", with: lab2 + "agent, runner]}")
            #expect(text.contains("roles: [agent, runner]"), "\(text)")
            try text.write(toFile: cluster.inventory, atomically: true, encoding: .utf8)
            let environment = try cluster.addGitLab("""
                  runnerPackage: {version: 17.7.1, aptRepository: \(lab.runnerRepositoryURL)}
                  serviceAccount: {projectId: 200}
                  runners:
                    - {name: shell, projectId: 200, executor: shell, tags: [lab]}

                """, blocks: "docker: {package: docker.io}\n")
            let inventory = cluster.inventory
            func provision(_ arguments: [String]) throws -> ProcessOutput {
                try run(Repo.provisionBinary, arguments, environment: environment)
            }
            let report = lab.directory + "/verify.xml"
            /// Verify must fail exactly `expected` (host → its failing checks).
            func expectBroken(_ expected: [String: [String]], _ location: SourceLocation = #_sourceLocation) throws {
                let result = try provision(["verify", inventory, "--junit", report])
                #expect(result.status == 1, "\(result.stdout)\(result.stderr)", sourceLocation: location)
                let failed = try suites(report).mapValues(failing).filter { !$0.value.isEmpty }
                #expect(failed == expected, "\(result.stdout)", sourceLocation: location)
            }
            func repair() throws {
                let applied = try provision(["apply", inventory])
                #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            }

            try repair()
            let green = try provision(["verify", inventory, "--junit", report])
            #expect(green.status == 0, "\(green.stdout)\(green.stderr)")
            let passing = try suites(report)
            #expect(passing.keys.sorted() == ["lab-1", "lab-2", "lab-3"])
            #expect(passing.values.allSatisfy { failing($0).isEmpty }, "\(green.stdout)")
            for check in ["docker", "gitlab-runner-package", "gitlab-runner-registration"] {
                #expect(passing["lab-2"]?[check] == false, "lab-2 lacks \(check): \(passing["lab-2"] ?? [:])")
            }
            for check in ["k3s-service-account", "gitlab-kubeconfig-variable", "no-extra-node"] {
                #expect(passing["lab-1"]?[check] == false, "lab-1 lacks \(check): \(passing["lab-1"] ?? [:])")
            }

            // The runner is deleted in GitLab.
            let runner = try #require((try lab.gitlabState()["runners"] as? [[String: Any]])?.first?["id"] as? Int)
            try lab.deleteGitLabRunner(id: runner)
            try expectBroken(["lab-2": ["gitlab-runner-registration", "no-drift"]])
            try repair()

            // Someone changes the runner's tags in GitLab: put back in place, the same runner.
            let recreated = try #require((try lab.gitlabState()["runners"] as? [[String: Any]])?.first?["id"] as? Int)
            let retagged = try lab.gitlabAPI("PUT", "/runners/\(recreated)", token: "root-api", form: ["tag_list=other"])
            #expect(retagged.status == 200)
            try expectBroken(["lab-2": ["gitlab-runner-registration", "no-drift"]])
            try repair()
            let runners = try lab.gitlabState()["runners"] as? [[String: Any]] ?? []
            #expect(runners.count == 1 && runners.first?["id"] as? Int == recreated)
            #expect(runners.first?["tag_list"] as? [String] == ["lab"])

            // Someone changes the KUBECONFIG variable in GitLab.
            let edited = try lab.gitlabAPI("PUT", "/projects/200/variables/KUBECONFIG", token: "project-bot",
                                           form: ["value=apiVersion: v1"])
            #expect(edited.status == 200)
            try expectBroken(["lab-1": ["gitlab-kubeconfig-variable", "no-drift"]])
            try repair()

            // Someone deletes the ClusterRoleBinding.
            _ = try lab.exec("lab-1", "k3s kubectl delete clusterrolebinding gitlab-admin")
            try expectBroken(["lab-1": ["k3s-service-account", "no-drift"]])
            try repair()

            // After the repairs, all green again.
            let again = try provision(["verify", inventory, "--junit", report])
            #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        }
    }
}
