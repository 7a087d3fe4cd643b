import Foundation
import Testing
import Facts
import Inventory
@testable import Steps
import Templates

/// Probe output as hosts print it, for the Docker and gitlab-runner package steps.
enum AptFixtures {
    static func facts(_ name: String) throws -> HostFacts {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/facts/\(name)", withExtension: "txt"))
        return try FactsProbe.parse(try String(contentsOf: url, encoding: .utf8))
    }

    /// dpkg-query's line for an installed package.
    static func installed(_ name: String, _ version: String) -> String { "pkg \(name) ii  \(version)" }

    /// `apt-cache policy` of a package apt's lists offer at `versions` (the first is the candidate).
    static func policy(_ name: String, _ versions: [String], installed: String? = nil) -> [String] {
        ["policy \(name):", "policy   Installed: \(installed ?? "(none)")",
         "policy   Candidate: \(versions.first ?? "(none)")", "policy   Version table:"]
            + versions.flatMap { version in
                ["policy  \(version == installed ? "***" : "   ") \(version) 500",
                 "policy         500 https://mirror.example/debian bookworm/main amd64 Packages"]
                    + (version == installed ? ["policy         100 /var/lib/dpkg/status"] : [])
            }
    }

    static func file(_ content: String) -> String { "source \(ManagedFile.digest(content)) 644 root:root" }
}

/// The docker step decides from dpkg, apt-cache, systemctl and `docker version` output alone.
@Suite struct DockerStepTests {
    static let ceVersion = "5:27.5.1-1~debian.12~bookworm"
    static let ioVersion = "20.10.24+dfsg1-1+deb12u1"

    func inventory(_ docker: String = "") throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            \(docker)
            gitlab: {url: https://gitlab.example.com, token: t, runnerPackage: {version: 17.7.1}}
            hosts:
              - {name: ci-1, address: 10.0.0.30, roles: [runner]}
              - {name: s1, address: 10.0.0.1, roles: [server]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
    }

    func decide(_ inventory: Inventory, _ probe: [String], facts: String = "debian12-amd64") throws -> Decision {
        let step = DockerStep(settings: inventory.docker ?? DockerSettings())
        let context = StepContext(host: try #require(inventory.host(named: "ci-1")), inventory: inventory,
                                  facts: try AptFixtures.facts(facts), probe: probe.joined(separator: "\n"),
                                  templates: TemplateSet())
        return try step.decide(context)
    }

    /// What the step writes to /etc/apt/sources.list.d/docker.sources for a host with those facts.
    func source(_ inventory: Inventory, facts: String = "debian12-amd64") throws -> String {
        for case .writeFile(let path, let content, let mode, _) in try decide(inventory, [], facts: facts).actions {
            #expect(path == "/etc/apt/sources.list.d/docker.sources" && mode == 0o644)
            return content
        }
        Issue.record("no source written")
        return ""
    }

    func commands(_ decision: Decision) -> [String] {
        decision.actions.compactMap { if case .run(let command) = $0 { command } else { nil } }
    }

    let running = ["service active enabled", "server 20.10.24+dfsg1"]

    @Test func onlyRunnerHostsAndOnlyThemPayForTheProbe() throws {
        let inventory = try inventory(), step = DockerStep()
        let runner = try #require(inventory.host(named: "ci-1")), server = try #require(inventory.host(named: "s1"))
        #expect(step.applies(to: runner, facts: HostFacts()) && !step.applies(to: server, facts: HostFacts()))
        #expect(!step.concerns(server))  // so a server's probe round leaves the Docker probe out (ProbeRoundTests)
        #expect(step.probe(for: runner).contains("docker version --format '{{.Server.Version}}'"))
    }

    @Test func docker_ioInstalledRunningAndAnsweringIsOk() throws {
        let decision = try decide(try inventory(), [AptFixtures.installed("docker.io", Self.ioVersion)] + running)
        #expect(decision == .ok("docker.io \(Self.ioVersion) installed, docker.service active and enabled, the daemon "
                                + "answers (Docker Engine 20.10.24+dfsg1)"))
    }

    @Test func aFreshHostReadsTheListsInstallsDocker_ioWithRecommendsAndStartsIt() throws {
        // Empty apt lists: apt-cache knows nothing, so the policy section is empty.
        let decision = try decide(try inventory(), ["service inactive "])
        #expect(decision.reason == "docker.io not installed")
        let commands = commands(decision)
        #expect(commands.count == 3)
        #expect(commands[0].hasSuffix("apt-get -o DPkg::Lock::Timeout=300 -q update"))
        #expect(commands[1].hasSuffix("apt-get -o DPkg::Lock::Timeout=300 -q install -y docker.io"))
        #expect(commands[2] == "systemctl enable --now docker.service")
        #expect(decision.actions.last == .awaitConvergence(timeout: 60))
    }

    @Test func listsThatOfferThePackageAreNotReadAgain() throws {
        let decision = try decide(try inventory(), AptFixtures.policy("docker.io", [Self.ioVersion]) + ["service  "])
        #expect(commands(decision).map { $0.contains(" update") } == [false, false])
        #expect(commands(decision)[0].hasSuffix("install -y docker.io"))
    }

    @Test func aPinnedVersionThatDriftedIsPutBackEvenDownwards() throws {
        let inventory = try inventory("docker: {version: \"\(Self.ioVersion)\"}")
        let decision = try decide(inventory, [AptFixtures.installed("docker.io", "26.1.5+dfsg1-9")] + running)
        #expect(decision.reason == "docker.io 26.1.5+dfsg1-9 installed, the inventory pins \(Self.ioVersion)")
        let commands = commands(decision)
        // Every wanted package was installed, so apt-cache was not asked: the lists are read first.
        #expect(commands[0].hasSuffix(" update"))
        #expect(commands[1].hasSuffix("install -y --allow-downgrades docker.io=\(Self.ioVersion)"))
        #expect(try decide(inventory, [AptFixtures.installed("docker.io", Self.ioVersion)] + running).reason
                .hasPrefix("docker.io \(Self.ioVersion) installed"))
    }

    @Test func docker_ceIsRemovedBeforeDocker_ioIsInstalledOnlyWhatIsThere() throws {
        let probe = [AptFixtures.installed("docker-ce", Self.ceVersion), AptFixtures.installed("docker-ce-cli", Self.ceVersion),
                     "pkg containerd.io ii  1.7.25-1", "pkg docker-buildx-plugin rc  0.20.0-1~debian.12~bookworm"]
            + AptFixtures.policy("docker.io", [Self.ioVersion]) + running
        let decision = try decide(try inventory(), probe)
        #expect(decision.reason == "docker-ce, docker-ce-cli, containerd.io installed, which docker.io replaces; "
                + "docker.io not installed")
        let commands = commands(decision)
        #expect(commands[0].hasSuffix("apt-get -o DPkg::Lock::Timeout=300 -q remove -y docker-ce docker-ce-cli containerd.io"))
        #expect(commands[1].hasSuffix("install -y docker.io"))
        #expect(commands[2] == "systemctl enable --now docker.service")
    }

    @Test func docker_ceOnDebianGetsDockersKeySourceAndPackagesAfterDebiansAreRemoved() throws {
        let inventory = try inventory("docker: {package: docker-ce, version: \"\(Self.ceVersion)\"}")
        let source = try source(inventory)
        #expect(source.hasPrefix("# Written by provision for ci-1"))
        #expect(source.hasSuffix("""
            Types: deb
            URIs: https://download.docker.com/linux/debian
            Suites: bookworm
            Components: stable
            Architectures: amd64
            Signed-By: /etc/apt/keyrings/docker.asc

            """))
        let probe = ["pkg docker.io ii  \(Self.ioVersion)", "pkg runc ii  1.1.5+ds1-1", "pkg containerd un  ",
                     "keyring absent", "source absent", "service active enabled"]
        let decision = try decide(inventory, probe)
        #expect(decision.reason == "docker.io, runc installed, which docker-ce replaces; /etc/apt/keyrings/docker.asc "
                + "is missing; /etc/apt/sources.list.d/docker.sources is missing; docker-ce, docker-ce-cli, "
                + "containerd.io, docker-buildx-plugin, docker-compose-plugin not installed")
        let commands = commands(decision)
        #expect(commands[0].hasSuffix("remove -y docker.io runc"))
        #expect(commands[1].hasPrefix("u=https://download.docker.com/linux/debian/gpg; t=/etc/apt/keyrings/.docker.asc.download; "
                                      + "install -m 0755 -d /etc/apt/keyrings && "))
        #expect(commands[1].hasSuffix("chmod 0644 \"$t\" && mv -f \"$t\" /etc/apt/keyrings/docker.asc"))
        #expect(decision.actions[2] == .writeFile(path: "/etc/apt/sources.list.d/docker.sources", content: source,
                                                  mode: 0o644, owner: "root:root"))
        #expect(commands[2].hasSuffix(" update"))
        #expect(commands[3].hasSuffix("install -y --allow-downgrades 'docker-ce=\(Self.ceVersion)' "
                                      + "'docker-ce-cli=\(Self.ceVersion)' containerd.io docker-buildx-plugin "
                                      + "docker-compose-plugin"))
        #expect(commands[4] == "systemctl enable --now docker.service")
    }

    @Test func raspbianOn32BitUsesDockersRaspbianRepositoryAndArmhf() throws {
        let inventory = try inventory("docker: {package: docker-ce}")
        let source = try source(inventory, facts: "raspbian-armhf-v1")
        #expect(source.contains("URIs: https://download.docker.com/linux/raspbian\nSuites: bullseye\n"))
        #expect(source.contains("Architectures: armhf\n"))
        #expect(source.contains("downloaded from https://download.docker.com/linux/raspbian/gpg"))
        let download = commands(try decide(inventory, [], facts: "raspbian-armhf-v1"))[0]
        #expect(download.hasPrefix("u=https://download.docker.com/linux/raspbian/gpg;"))
    }

    @Test func a64BitPiTakesDpkgsArm64NotUnamesAarch64() throws {
        let source = try source(try inventory("docker: {package: docker-ce}"), facts: "raspberry-pi-bookworm")
        #expect(source.contains("URIs: https://download.docker.com/linux/debian\nSuites: bookworm\n"))
        #expect(source.contains("Architectures: arm64\n") && !source.contains("aarch64"))
    }

    @Test func aMirrorIsTheBaseOfBothTheSourceAndTheKey() throws {
        let inventory = try inventory("docker: {package: docker-ce, aptRepository: \"http://10.0.0.9:8080/docker/linux/debian\"}")
        #expect(try source(inventory).contains("URIs: http://10.0.0.9:8080/docker/linux/debian\n"))
        #expect(commands(try decide(inventory, []))[0].hasPrefix("u=http://10.0.0.9:8080/docker/linux/debian/gpg;"))
        // On Raspbian the mirror's /debian becomes /raspbian, as on Docker's own site.
        #expect(try source(inventory, facts: "raspbian-armhf-v1").contains("URIs: http://10.0.0.9:8080/docker/linux/raspbian\n"))
    }

    @Test func aMissingKeyringAloneIsFetchedAndTheListsReadAgain() throws {
        let inventory = try inventory("docker: {package: docker-ce}")
        let installed = DockerStep.dockerCEPackages.map { AptFixtures.installed($0, "1") }
        let upToDate = installed + ["keyring present 644", AptFixtures.file(try source(inventory))] + running
        #expect(try decide(inventory, upToDate).reason.hasPrefix("docker-ce 1 installed, docker.service active"))

        let noKey = try decide(inventory, upToDate.map { $0.hasPrefix("keyring") ? "keyring absent" : $0 })
        #expect(noKey.reason == "/etc/apt/keyrings/docker.asc is missing")
        #expect(commands(noKey).count == 2 && commands(noKey)[1].hasSuffix(" update"))
        let html = try decide(inventory, upToDate.map { $0.hasPrefix("keyring") ? "keyring invalid" : $0 })
        #expect(html.reason == "/etc/apt/keyrings/docker.asc is not an ASCII-armored PGP key")
        let unreadable = try decide(inventory, upToDate.map { $0.hasPrefix("keyring") ? "keyring present 600" : $0 })
        #expect(unreadable.reason == "/etc/apt/keyrings/docker.asc is not readable by apt (mode 600)")
        #expect(commands(unreadable) == ["chmod a+r /etc/apt/keyrings/docker.asc"])
    }

    @Test func anEditedSourceIsPutBackWithItsKeyAndTheListsReadAgain() throws {
        let inventory = try inventory("docker: {package: docker-ce}")
        let installed = DockerStep.dockerCEPackages.map { AptFixtures.installed($0, "1") }
        let decision = try decide(inventory, installed + ["keyring present 644", AptFixtures.file("edited\n")] + running)
        #expect(decision.reason.hasPrefix("/etc/apt/sources.list.d/docker.sources differs from its template"))
        #expect(commands(decision)[0].contains("curl -fsSL"))
        #expect(decision.actions[1] == .writeFile(path: "/etc/apt/sources.list.d/docker.sources",
                                                  content: try source(inventory), mode: 0o644, owner: "root:root"))
        #expect(commands(decision)[1].hasSuffix(" update") && commands(decision).count == 2)
    }

    @Test func aStoppedOrDisabledDaemonIsStartedAndEnabled() throws {
        let installed = AptFixtures.installed("docker.io", Self.ioVersion)
        let stopped = try decide(try inventory(), [installed, "service inactive disabled", "server "])
        #expect(stopped.reason == "docker.service is inactive and disabled")
        #expect(stopped.actions == [.run("systemctl enable --now docker.service"), .awaitConvergence(timeout: 60)])
        #expect(throws: StepError.self) { try decide(try inventory(), [installed, "service inactive masked"]) }
    }

    @Test func aDaemonThatDoesNotAnswerIsWaitedForNotRestarted() throws {
        let decision = try decide(try inventory(), [AptFixtures.installed("docker.io", Self.ioVersion),
                                                    "service active enabled", "server "])
        #expect(decision == .change(reason: "docker.service is active, but `docker version` gets no answer from the daemon",
                                    actions: [.awaitConvergence(timeout: 60)]))
    }

    @Test func theProbeAndTheKeyDownloadAreValidShell() throws {
        let inventory = try inventory("docker: {package: docker-ce}")
        let host = try #require(inventory.host(named: "ci-1"))
        for script in [DockerStep(settings: try #require(inventory.docker)).probe(for: host),
                       commands(try decide(inventory, []))[0]] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-n", "-c", script]
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(script)")
        }
    }

    @Test func apt_cachePolicyIsReadBack() {
        let lines = AptFixtures.policy("docker-ce", ["5:27.5.1-1~debian.12~bookworm", "5:26.1.4-1~debian.12~bookworm"],
                                       installed: "5:26.1.4-1~debian.12~bookworm")
            + ["policy containerd.io:", "policy   Installed: (none)", "policy   Candidate: (none)", "policy   Version table:"]
        let policies = Apt.policies(lines)
        #expect(policies?["docker-ce"]?.versions == ["5:27.5.1-1~debian.12~bookworm", "5:26.1.4-1~debian.12~bookworm"])
        #expect(Apt.offers(policies, "docker-ce", version: "5:27.5.1-1~debian.12~bookworm"))
        #expect(!Apt.offers(policies, "docker-ce", version: "5:25.0.0-1~debian.12~bookworm"))
        #expect(!Apt.offers(policies, "containerd.io", version: nil) && !Apt.offers(policies, "runc", version: nil))
        #expect(Apt.policies(["pkg runc ii  1"]) == nil)
    }
}

/// Where the Docker and gitlab-runner steps go, and k3s-docker-forward on a runner node that gets Docker in the run.
@Suite struct RunnerCatalogTests {
    func inventory(_ hosts: String, k3s: Bool = true) throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            \(k3s ? "k3s: {version: v1.31.4+k3s1}" : "")
            gitlab: {url: https://gitlab.example.com, token: t, runnerPackage: {version: 17.7.1}}
            hosts:
            \(hosts)
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
    }

    @Test func afterKernelForwardingBeforeK3sOnlyWithRunnerHosts() throws {
        let runners = try inventory("  - {name: s1, address: 10.0.0.1, roles: [server, runner]}")
        #expect(StepCatalog.steps(for: runners).map(\.id) == [
            "base-packages", "pi-cgroups", "kernel-forwarding", "docker", "gitlab-runner-package", "gitlab-runner-registration",
            "k3s-install-script", "k3s-token", "k3s-config", "k3s-docker-forward", "k3s-service", "k3s-ready",
        ])
        let none = try inventory("  - {name: s1, address: 10.0.0.1, roles: [server]}")
        #expect(!StepCatalog.steps(for: none).map(\.id).contains("docker"))
        let noK3s = try inventory("  - {name: r1, address: 10.0.0.2, roles: [runner]}", k3s: false)
        #expect(StepCatalog.steps(for: noK3s).map(\.id) == [
            "base-packages", "pi-cgroups", "kernel-forwarding", "docker", "gitlab-runner-package", "gitlab-runner-registration",
        ])
    }

    @Test func theForwardStepAppliesToARunnerNodeBeforeItHasDockerAndWaitsForIt() throws {
        let inventory = try inventory("""
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.0.2, roles: [agent, runner]}
            """)
        let forward = DockerForwardStep(k3s: try #require(inventory.k3s))
        #expect(forward.applies(to: try #require(inventory.host(named: "a1")), facts: HostFacts()))
        #expect(!forward.applies(to: try #require(inventory.host(named: "s1")), facts: HostFacts()))
        #expect(forward.dependsOn.contains("docker"))
    }
}
