import Foundation
import Testing
import Facts
import Inventory
@testable import Steps
import Templates

/// gitlab-runner's key, source, pinned packages, service and docker group, decided from one probe's output.
@Suite struct GitLabRunnerPackageStepTests {
    func inventory(version: String = "17.7.1", repository: String = "", runners: String = "{name: d, image: i}") throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            gitlab:
              url: https://gitlab.example.com
              token: t
              runnerPackage: {version: \(version)\(repository.isEmpty ? "" : ", aptRepository: \"\(repository)\"")}
              runners: [\(runners)]
            hosts:
              - {name: ci-1, address: 10.0.0.30, roles: [runner]}
              - {name: s1, address: 10.0.0.1, roles: [server]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
    }

    func step(_ inventory: Inventory) -> GitLabRunnerPackageStep { GitLabRunnerPackageStep(gitlab: inventory.gitlab) }

    func decide(_ inventory: Inventory, _ probe: [String], facts: String = "debian12-amd64") throws -> Decision {
        let context = StepContext(host: try #require(inventory.host(named: "ci-1")), inventory: inventory,
                                  facts: try AptFixtures.facts(facts), probe: probe.joined(separator: "\n"),
                                  templates: TemplateSet())
        return try step(inventory).decide(context)
    }

    func source(_ inventory: Inventory, facts: String = "debian12-amd64") throws -> String {
        for case .writeFile(let path, let content, let mode, _) in try decide(inventory, [], facts: facts).actions {
            #expect(path == "/etc/apt/sources.list.d/gitlab-runner.sources" && mode == 0o644)
            return content
        }
        Issue.record("no source written")
        return ""
    }

    func commands(_ decision: Decision) -> [String] {
        decision.actions.compactMap { if case .run(let command) = $0 { command } else { nil } }
    }

    /// A host where everything is as the inventory wants, with the probe lines `change` replaces.
    func converged(_ inventory: Inventory, version: String = "17.7.1-1",
                   _ change: [String: String] = [:]) throws -> [String] {
        let lines = ["keyring present 644", AptFixtures.file(try source(inventory)),
                     AptFixtures.installed("gitlab-runner", version),
                     AptFixtures.installed("gitlab-runner-helper-images", version),
                     "service active enabled", "status 0", "groups gitlab-runner docker"]
        return lines.compactMap { line in
            let word = String(line.split(separator: " ").first ?? "")
            let key = word == "pkg" ? String(line.split(separator: " ")[1]) : word
            guard let replacement = change[key] else { return line }
            return replacement.isEmpty ? nil : replacement
        }
    }

    @Test func onlyRunnerHostsAndTheyAfterDocker() throws {
        let inventory = try inventory(), step = step(inventory)
        let runner = try #require(inventory.host(named: "ci-1")), server = try #require(inventory.host(named: "s1"))
        #expect(step.applies(to: runner, facts: HostFacts()) && !step.applies(to: server, facts: HostFacts()))
        #expect(!step.concerns(server))
        #expect(step.dependsOn.contains("docker"))
    }

    @Test func everythingInPlaceIsOk() throws {
        let inventory = try inventory()
        #expect(try decide(inventory, try converged(inventory)) == .ok(
            "gitlab-runner and gitlab-runner-helper-images 17.7.1-1 installed, gitlab-runner.service enabled and "
                + "running, gitlab-runner in the docker group"))
    }

    @Test func aFreshHostGetsKeySourcePinnedPackagesServiceAndGroup() throws {
        let inventory = try inventory()
        let source = try source(inventory)
        #expect(source.hasSuffix("""
            Types: deb
            URIs: https://packages.gitlab.com/runner/gitlab-runner/debian
            Suites: bookworm
            Components: main
            Architectures: amd64
            Signed-By: /etc/apt/keyrings/gitlab-runner.asc

            """))
        let decision = try decide(inventory, ["keyring absent", "source absent", "service  ", "groups -"])
        #expect(decision.reason == "/etc/apt/keyrings/gitlab-runner.asc is missing; "
                + "/etc/apt/sources.list.d/gitlab-runner.sources is missing; gitlab-runner not installed; "
                + "gitlab-runner-helper-images not installed")
        let commands = commands(decision)
        #expect(commands[0].hasPrefix("u=https://packages.gitlab.com/runner/gitlab-runner/gpgkey; "
                                      + "t=/etc/apt/keyrings/.gitlab-runner.asc.download;"))
        #expect(decision.actions[1] == .writeFile(path: "/etc/apt/sources.list.d/gitlab-runner.sources",
                                                  content: source, mode: 0o644, owner: "root:root"))
        #expect(commands[1].hasSuffix(" update"))
        #expect(commands[2].hasSuffix("install -y --no-install-recommends --allow-downgrades gitlab-runner=17.7.1-1 "
                                      + "gitlab-runner-helper-images=17.7.1-1"))
        #expect(commands[3] == "systemctl enable --now gitlab-runner.service")
        #expect(commands[4] == "usermod -aG docker gitlab-runner")
    }

    @Test func arm64AndArmhfComeFromDpkgAndAMirrorIsTheBase() throws {
        let mirror = try inventory(repository: "http://10.250.0.9:8080/runner/gitlab-runner/")
        let pi = try source(mirror, facts: "raspberry-pi-bookworm")
        #expect(pi.contains("URIs: http://10.250.0.9:8080/runner/gitlab-runner/debian\nSuites: bookworm\n"))
        #expect(pi.contains("Architectures: arm64\n"))
        #expect(commands(try decide(mirror, []))[0].hasPrefix("u=http://10.250.0.9:8080/runner/gitlab-runner/gpgkey;"))
        let raspbian = try source(try inventory(), facts: "raspbian-armhf-v1")
        #expect(raspbian.contains("/gitlab-runner/debian\nSuites: bullseye\n") && raspbian.contains("Architectures: armhf\n"))
    }

    @Test func aDriftedVersionIsPinnedBackAndTheListsReadOnlyWhenTheyLackIt() throws {
        let inventory = try inventory()
        let drifted = try decide(inventory, try converged(inventory, version: "17.8.0-1"))
        #expect(drifted.reason == "gitlab-runner 17.8.0-1 installed, the inventory pins 17.7.1-1; "
                + "gitlab-runner-helper-images 17.8.0-1 installed, the inventory pins 17.7.1-1")
        // Both were installed, so apt-cache was not asked: read the lists first.
        #expect(commands(drifted).count == 3 && commands(drifted)[0].hasSuffix(" update"))
        #expect(commands(drifted)[1].hasSuffix("--allow-downgrades gitlab-runner=17.7.1-1 gitlab-runner-helper-images=17.7.1-1"))

        // The helper images went missing, and the lists offer the pinned release: no update.
        let offered = AptFixtures.policy("gitlab-runner", ["17.8.0-1", "17.7.1-1"], installed: "17.7.1-1")
            + AptFixtures.policy("gitlab-runner-helper-images", ["17.8.0-1", "17.7.1-1"])
        let missing = try decide(inventory, try converged(inventory, ["gitlab-runner-helper-images": ""]) + offered)
        #expect(missing.reason == "gitlab-runner-helper-images not installed")
        #expect(commands(missing).count == 2 && commands(missing)[0].contains(" install -y "))
        #expect(commands(missing)[1] == "systemctl enable --now gitlab-runner.service")
    }

    @Test func aMissingKeyringIsFetchedAndTheListsReadWithoutReinstalling() throws {
        let inventory = try inventory()
        let decision = try decide(inventory, try converged(inventory, ["keyring": "keyring absent"]))
        #expect(decision.reason == "/etc/apt/keyrings/gitlab-runner.asc is missing")
        #expect(commands(decision).count == 2)
        #expect(commands(decision)[0].contains("curl -fsSL") && commands(decision)[1].hasSuffix(" update"))
    }

    @Test func aStoppedServiceIsStartedAndAMissingUnitReinstalled() throws {
        let inventory = try inventory()
        let stopped = try decide(inventory, try converged(inventory, ["service": "service inactive enabled", "status": "status 1"]))
        #expect(stopped.reason == "gitlab-runner.service is inactive and enabled (gitlab-runner status exits 1)")
        #expect(stopped.actions == [.run("systemctl enable --now gitlab-runner.service"), .awaitConvergence(timeout: 30)])
        let noUnit = try decide(inventory, try converged(inventory, ["service": "service inactive ", "status": "status 1"]))
        #expect(commands(noUnit) == ["gitlab-runner install --user=gitlab-runner --working-directory=/home/gitlab-runner",
                                     "systemctl enable --now gitlab-runner.service"])
        #expect(throws: StepError.self) {
            try decide(inventory, try converged(inventory, ["service": "service inactive masked", "status": "status 1"]))
        }
    }

    @Test func theDockerGroupOnlyWithADockerExecutor() throws {
        let docker = try inventory()
        let outside = try decide(docker, try converged(docker, ["groups": "groups gitlab-runner"]))
        #expect(outside == .change(reason: "gitlab-runner is not in the docker group (a runner uses the docker executor)",
                                   actions: [.run("usermod -aG docker gitlab-runner")]))
        let shell = try inventory(runners: "{name: s, executor: shell}")
        #expect(try decide(shell, try converged(shell, ["groups": "groups gitlab-runner"])) == .ok(
            "gitlab-runner and gitlab-runner-helper-images 17.7.1-1 installed, gitlab-runner.service enabled and running"))
    }

    @Test func releasesBefore17_7_1HaveNoHelperImagesPackage() throws {
        let old = try inventory(version: "16.11.0")
        #expect(step(old).packages == ["gitlab-runner"])
        #expect(step(try inventory(version: "17.7.1")).packages.count == 2)
        #expect(step(try inventory(version: "18.0.0")).packages.count == 2)
        let decision = try decide(old, ["keyring present 644", AptFixtures.file(try source(old)), "groups -"])
        #expect(commands(decision).contains { $0.hasSuffix("--allow-downgrades gitlab-runner=16.11.0-1") })
    }

    @Test func theProbeIsValidShell() throws {
        let inventory = try inventory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-n", "-c", step(inventory).probe(for: try #require(inventory.host(named: "ci-1")))]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
