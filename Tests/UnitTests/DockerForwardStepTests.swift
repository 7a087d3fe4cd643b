import Foundation
import Testing
import Facts
import Inventory
@testable import Steps
import Templates

/// Docker beside k3s: the DOCKER-USER decision from captured probe output and the inventory alone.
@Suite struct DockerForwardStepTests {
    func inventory(_ config: String = "") throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: t, airgap: {directory: /srv/k3s}\(config.isEmpty ? "" : ", config: {\(config)}")}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent]}
              - {name: r1, address: 10.0.2.1, roles: [runner]}
            gitlab: {url: https://gitlab.example.com, token: glpat-x, runnerPackage: {version: 17.7.1}}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
    }

    func step(_ inventory: Inventory) throws -> DockerForwardStep {
        DockerForwardStep(k3s: try #require(inventory.k3s))
    }

    func decide(_ inventory: Inventory, _ probe: String, host: String = "a1") throws -> Decision {
        let context = StepContext(host: try #require(inventory.host(named: host)), inventory: inventory,
                                  facts: docker, probe: probe, templates: TemplateSet())
        return try step(inventory).decide(context)
    }

    var docker: HostFacts {
        var facts = HostFacts()
        facts.versions.docker = "20.10.24+dfsg1"
        return facts
    }

    /// The drop-in the step writes on a1 (what it decides on a host without one).
    func dropIn(_ inventory: Inventory) throws -> String {
        guard case .writeFile(let path, let content, let mode, _) = try decide(inventory, "absent").actions.first else {
            Issue.record("no drop-in written"); return ""
        }
        #expect(path == "/etc/systemd/system/docker.service.d/provision-k3s-forward.conf" && mode == 0o644)
        return content
    }

    func current(_ inventory: Inventory) throws -> String {
        "\(ManagedFile.digest(try dropIn(inventory))) 644 root:root"
    }

    /// What the probe prints on a host where Docker runs with the default networks; `lacking` rules are missing.
    func live(_ lacking: [String] = [], tool: String = "/usr/sbin/iptables", policy: String = "DROP") -> String {
        let matches = ["-s 10.42.0.0/16", "-d 10.42.0.0/16", "-s 10.43.0.0/16", "-d 10.43.0.0/16"]
        return (["docker active no", "chain \(tool) present \(policy)"]
                + matches.map { "\(lacking.contains($0) ? "lacks" : "has") \(tool) \($0)" }).joined(separator: "\n")
    }

    let rules = ["-s 10.42.0.0/16", "-d 10.42.0.0/16", "-s 10.43.0.0/16", "-d 10.43.0.0/16"]

    @Test func appliesToK3sNodesWhereDockerIsInstalled() throws {
        let inventory = try inventory(), step = try step(inventory)
        for (host, withDocker) in [("s1", true), ("a1", true), ("r1", false)] {
            let node = try #require(inventory.host(named: host))
            #expect(step.applies(to: node, facts: docker) == withDocker)
            #expect(!step.applies(to: node, facts: HostFacts()))
        }
    }

    @Test func aFreshDockerHostGetsTheDropInAndTheRulesNow() throws {
        let inventory = try inventory()
        let decision = try decide(inventory, "absent\n" + live(rules))
        #expect(decision.reason == "/etc/systemd/system/docker.service.d/provision-k3s-forward.conf is missing; "
                + "FORWARD policy DROP and no ACCEPT for 10.42.0.0/16 and 10.43.0.0/16 in DOCKER-USER")
        let commands = rules.map { "/usr/sbin/iptables -w -C DOCKER-USER \($0) -j ACCEPT 2>/dev/null || /usr/sbin/iptables -w -I DOCKER-USER \($0) -j ACCEPT" }
        #expect(Array(decision.actions.dropFirst()) == [.run("systemctl daemon-reload")] + commands.map { .run($0) })
        // The drop-in runs the very same commands at every Docker start, and a failure there does not stop Docker.
        let content = try dropIn(inventory)
        let lines = content.split(separator: "\n").map(String.init).filter { $0.hasPrefix("ExecStartPost=") }
        #expect(lines == commands.map { "ExecStartPost=-/bin/sh -c '\($0)'" })
        #expect(content.contains("[Service]\n") && content.contains("Written by provision for a1"))
    }

    @Test func upToDateWhenTheDropInMatchesAndEveryRuleIsThere() throws {
        let inventory = try inventory()
        let decision = try decide(inventory, try current(inventory) + "\n" + live())
        #expect(decision == .ok("/etc/systemd/system/docker.service.d/provision-k3s-forward.conf is up to date; "
                                + "DOCKER-USER accepts 10.42.0.0/16 and 10.43.0.0/16 (FORWARD policy DROP)"))
    }

    @Test func oneMissingRuleIsNamedAndOnlyItIsPutBack() throws {
        let inventory = try inventory()
        let decision = try decide(inventory, try current(inventory) + "\n" + live(["-d 10.43.0.0/16"]))
        #expect(decision.reason == "FORWARD policy DROP and no ACCEPT for traffic to 10.43.0.0/16 in DOCKER-USER")
        #expect(decision.actions == [.run("/usr/sbin/iptables -w -C DOCKER-USER -d 10.43.0.0/16 -j ACCEPT 2>/dev/null || /usr/sbin/iptables -w -I DOCKER-USER -d 10.43.0.0/16 -j ACCEPT")])
    }

    @Test func dockerNotRunningNeedsOnlyTheDropIn() throws {
        let inventory = try inventory()
        let stopped = "docker inactive no\nchain /usr/sbin/iptables absent"
        let fresh = try decide(inventory, "absent\n" + stopped)
        #expect(fresh.actions.count == 2 && fresh.actions.last == .run("systemctl daemon-reload"))
        let done = try decide(inventory, try current(inventory) + "\n" + stopped)
        #expect(done.actions.isEmpty)
        #expect(done.reason.hasSuffix("no DOCKER-USER chain in iptables yet (docker.service inactive): the drop-in adds the rules when Docker starts"))
    }

    @Test func anUnloadedDropInIsLoaded() throws {
        let inventory = try inventory()
        let decision = try decide(inventory, try current(inventory) + "\n" + live().replacing("docker active no", with: "docker active yes"))
        #expect(decision.reason.contains("NeedDaemonReload=yes"))
        #expect(decision.actions == [.run("systemctl daemon-reload")])
    }

    @Test func aChainLeftInTheOtherBackendIsFixedThereToo() throws {
        let inventory = try inventory()
        let legacy = "chain /usr/sbin/iptables-legacy present DROP\n"
            + rules.map { "lacks /usr/sbin/iptables-legacy \($0)" }.joined(separator: "\n")
        let decision = try decide(inventory, try current(inventory) + "\n" + live() + "\n" + legacy)
        #expect(decision.reason == "iptables-legacy: FORWARD policy DROP and no ACCEPT for 10.42.0.0/16 and 10.43.0.0/16 in DOCKER-USER")
        #expect(decision.actions.count == 4)
        #expect(decision.actions.allSatisfy { $0.summary.hasPrefix("run: /usr/sbin/iptables-legacy -w -C DOCKER-USER") })
    }

    @Test func networksComeFromTheK3sConfigDualStackIncluded() throws {
        let inventory = try inventory("cluster-cidr: \"10.52.0.0/16,fd00:52::/56\", service-cidr: 10.53.0.0/16")
        let step = try step(inventory)
        let probe = step.probe(for: try #require(inventory.host(named: "a1")))
        #expect(probe.contains("c -s 10.52.0.0/16; c -d 10.52.0.0/16; c -s 10.53.0.0/16; c -d 10.53.0.0/16\n"))
        #expect(probe.contains("t=/usr/sbin/ip6tables;") && probe.contains("c -s fd00:52::/56; c -d fd00:52::/56\n"))
        let content = try dropIn(inventory)
        #expect(content.contains("ExecStartPost=-/bin/sh -c '/usr/sbin/ip6tables -w -C DOCKER-USER -s fd00:52::/56 -j ACCEPT"))
        #expect(!content.contains("10.42.0.0/16") && content.contains("-d 10.53.0.0/16"))
        let v6 = "chain /usr/sbin/ip6tables present DROP\nhas /usr/sbin/ip6tables -s fd00:52::/56\nlacks /usr/sbin/ip6tables -d fd00:52::/56"
        let decision = try decide(inventory, "absent\ndocker active no\nchain /usr/sbin/iptables absent\n" + v6)
        #expect(decision.reason.hasSuffix("; ip6tables: FORWARD policy DROP and no ACCEPT for traffic to fd00:52::/56 in DOCKER-USER"))
    }

    @Test func aNetworkThatIsNotACIDRIsRefusedBeforeReachingAShell() throws {
        for bad in ["10.42.0.0", "10.42.0.0/33", "10.42.0.256/16", "10.42.0.0/16; reboot", "'10.42.0.0/16'", "fd00::52::/56", "10.42.0.0/+16"] {
            let inventory = try inventory("cluster-cidr: \"\(bad.replacing("\"", with: "\\\""))\"")
            #expect(throws: StepError.self) { try decide(inventory, "absent") }
            #expect(!(try step(inventory).probe(for: try #require(inventory.host(named: "a1"))).contains(bad)))
        }
        let inventory = try inventory("service-cidr: \"10.43.0.0/16; reboot\"")
        do {
            _ = try decide(inventory, "absent")
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "k3s config service-cidr '10.43.0.0/16; reboot' is not a network in CIDR form (such as 10.43.0.0/16): fix it in the inventory's k3s config")
        }
    }
}
