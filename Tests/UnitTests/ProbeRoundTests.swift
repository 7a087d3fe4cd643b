import Foundation
import Testing
@testable import Engine
import Facts
import Inventory
import Steps

/// The one command that reads a host: facts first, then each step's probe in its own section.
@Suite struct ProbeRoundTests {
    @Test func sectionsComeBackToTheirSteps() throws {
        let facts = try String(contentsOf: #require(Bundle.module.url(forResource: "Fixtures/facts/debian12-amd64",
                                                                     withExtension: "txt")), encoding: .utf8)
        let output = facts + "\n@@provision-probe base-packages\ncurl ii \niptables ii \n\n"
            + "@@provision-probe kernel-forwarding\nabsent\n0\n"
        let (parsed, probes) = try ProbeRound.parse(output)
        #expect(parsed.hostname == "ci-box-1")
        #expect(probes == ["base-packages": "curl ii \niptables ii ", "kernel-forwarding": "absent\n0"])
    }

    /// The script runs every probe after the facts, each isolated in a subshell, as one shell command.
    @Test func theScriptParsesBackUnderARealShell() throws {
        let host = try #require(try InventoryLoader.parse(yaml: "k3s: {version: v1.31.4+k3s1}\nhosts:\n  - {name: h, address: 10.0.0.1, roles: [server]}\n",
                                                         path: "/tmp/i.yaml", environment: ["HOME": "/root"]).hosts.first)
        let script = ProbeRound.script(for: host, steps: [BasePackagesStep(packages: ["dpkg"]), KernelForwardingStep()])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let (_, probes) = try ProbeRound.parse(output)
        #expect(probes["base-packages"]?.hasPrefix("dpkg ii") == true)  // dpkg is installed wherever this runs
        #expect(probes.keys.sorted() == ["base-packages", "kernel-forwarding"])
    }

    /// A host is probed only for the steps its roles can concern: an agent sends no `kubectl get nodes` (k3s-ready)
    /// and no Docker probe, a runner-only host no k3s probe at all, while the runner host next to k3s sends both.
    @Test func aHostIsProbedOnlyForTheStepsItsRolesConcern() throws {
        let inventory = try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: t}
            gitlab: {url: https://gitlab.example.com, token: t, runnerPackage: {version: 17.7.1}}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.0.2, roles: [agent]}
              - {name: a2, address: 10.0.0.3, roles: [agent, runner]}
              - {name: ci, address: 10.0.0.4, roles: [runner]}
            """, path: "/tmp/i.yaml", environment: ["HOME": "/root"])
        let steps = StepCatalog.steps(for: inventory)
        func sections(_ name: String) throws -> [String] {
            let script = ProbeRound.script(for: try #require(inventory.host(named: name)), steps: steps)
            return script.split(separator: "\n").compactMap { line in
                line.hasPrefix("printf '\\n\(ProbeRound.marker)%s\\n' ")
                    ? String(line.split(separator: " ")[3].dropLast()) : nil  // `... base-packages; (`
            }
        }
        #expect(try sections("s1") == ["base-packages", "pi-cgroups", "kernel-forwarding", "k3s-install-script",
                                       "k3s-token", "k3s-config", "k3s-docker-forward", "k3s-service", "k3s-ready"])
        #expect(try sections("a1") == ["base-packages", "pi-cgroups", "kernel-forwarding", "k3s-install-script",
                                       "k3s-config", "k3s-docker-forward", "k3s-service"])
        #expect(try sections("a2") == ["base-packages", "pi-cgroups", "kernel-forwarding", "docker", "gitlab-runner-package",
                                       "gitlab-runner-registration", "k3s-install-script", "k3s-config",
                                       "k3s-docker-forward", "k3s-service"])
        #expect(try sections("ci") == ["base-packages", "pi-cgroups", "docker", "gitlab-runner-package",
                                       "gitlab-runner-registration"])
    }
}
