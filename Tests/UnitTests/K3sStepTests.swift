import Foundation
import Testing
import Facts
import Inventory
import ProvisionBasics
@testable import Steps
import Templates

/// k3s steps decide from captured probe output and the inventory alone.
@Suite struct K3sStepTests {
    func inventory(servers: Int = 1, extra: String = "") throws -> Inventory {
        var hosts = (1...servers).map { "  - {name: s\($0), address: 10.0.0.\($0), roles: [server]}" }
        hosts.append("  - {name: a1, address: 10.0.1.1, roles: [agent], labels: {disk: ssd}, taints: [\"ci=true:NoSchedule\"]}")
        return try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: "${env:T}", airgap: {directory: /srv/k3s}\(extra)}
            hosts:
            \(hosts.joined(separator: "\n"))
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root", "T": "tok'en"])
    }

    func context(_ inventory: Inventory, _ host: String, probe: String = "", facts: HostFacts = HostFacts()) throws -> StepContext {
        StepContext(host: try #require(inventory.host(named: host)), inventory: inventory, facts: facts, probe: probe,
                    templates: TemplateSet())
    }

    func config(_ inventory: Inventory, _ host: String) throws -> String {
        guard case .change(_, let actions) = try K3sConfigStep().decide(try context(inventory, host, probe: "absent")),
              case .writeFile(_, let content, let mode, _) = actions.first else {
            Issue.record("no write"); return ""
        }
        #expect(mode == 0o600)
        return content
    }

    @Test func aSingleServerNeedsNoJoinAddressAndAgentsJoinIt() throws {
        let inventory = try inventory(extra: ", disable: [traefik]")
        let server = try config(inventory, "s1")
        #expect(server.contains("token: 'tok''en'\n"))        // quoted: a quote in the token stays a quote
        #expect(!server.contains("server:") && !server.contains("cluster-init"))
        #expect(server.contains("tls-san:\n  - '10.0.0.1'\n"))
        #expect(server.contains("disable:\n  - 'traefik'\n"))
        let agent = try config(inventory, "a1")
        #expect(agent.contains("server: 'https://10.0.0.1:6443'\n"))
        #expect(agent.contains("node-label:\n  - 'disk=ssd'\n"))
        #expect(agent.contains("node-taint:\n  - 'ci=true:NoSchedule'\n"))
        #expect(!agent.contains("disable:") && !agent.contains("tls-san:"))
    }

    @Test func threeServersUseEmbeddedEtcdFromTheFirst() throws {
        let inventory = try inventory(servers: 3)
        #expect(try config(inventory, "s1").contains("cluster-init: true\n"))
        let second = try config(inventory, "s2")
        #expect(second.contains("server: 'https://10.0.0.1:6443'\n") && !second.contains("cluster-init"))
    }

    @Test func aChangedConfigRestartsThatNodesServiceOnlyWhenInstalledOneNodeAtATime() throws {
        let inventory = try inventory()
        let other = String(repeating: "0", count: 64) + " 600 root:root"
        let installed = try K3sConfigStep().decide(try context(inventory, "a1", probe: "\(other)\nunit=k3s-agent"))
        #expect(installed.actions.first == .disruptive(group: K3s.agentsGroup))
        #expect(installed.actions.last == .run("systemctl restart k3s-agent"))
        let fresh = try K3sConfigStep().decide(try context(inventory, "a1", probe: other))
        #expect(fresh.actions.count == 1)
    }

    func facts(_ version: String?) -> HostFacts {
        var facts = HostFacts()
        facts.versions.k3s = version
        return facts
    }

    @Test func aServerIsLeftAloneOnlyWhenRunningTheWantedVersionWithItsAPIAndNodeReady() throws {
        let inventory = try inventory()
        let running = "k3s active enabled stale=0\nk3s-agent inactive disabled stale=0\nreadyz=ok\nnode=True"
        let step = K3sServiceStep()
        #expect(try step.decide(try context(inventory, "s1", probe: running, facts: facts("v1.31.4+k3s1"))).actions.isEmpty)
        // Started but not ready: wait, change nothing.
        let starting = try step.decide(try context(inventory, "s1", probe: running.replacing("node=True", with: "node=False"),
                                                   facts: facts("v1.31.4+k3s1")))
        #expect(starting.reason == "node s1 is not Ready yet (False)")
        #expect(starting.actions == [.awaitConvergence(timeout: K3sServiceStep.readyTimeout)])
        let upgrade = try step.decide(try context(inventory, "s1", probe: running, facts: facts("v1.30.2+k3s1")))
        #expect(upgrade.reason == "k3s v1.30.2+k3s1 installed, inventory wants v1.31.4+k3s1")
        #expect(upgrade.actions == [.disruptive(group: K3s.serversGroup),
                                    .run("INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=server INSTALL_K3S_FORCE_RESTART=true timeout 300 sh /usr/local/share/provision/k3s-install.sh && rm -f /var/lib/provision/k3s-restart-pending"),
                                    .awaitConvergence(timeout: K3sServiceStep.readyTimeout)])
    }

    @Test func anAirgapUpgradeRestartsTheProcessStillRunningTheReplacedBinary() throws {
        // The assets step swapped the binary: the version on disk is right, the running process is not.
        let probe = "k3s inactive disabled stale=0\nk3s-agent active enabled stale=1"
        let decision = try K3sServiceStep().decide(try context(try inventory(), "a1", probe: probe, facts: facts("v1.31.4+k3s1")))
        #expect(decision.reason == "k3s-agent.service still runs the k3s binary that was replaced; it must restart on v1.31.4+k3s1")
        #expect(decision.actions.contains(.run("INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=agent INSTALL_K3S_FORCE_RESTART=true timeout 300 sh /usr/local/share/provision/k3s-install.sh && rm -f /var/lib/provision/k3s-restart-pending")))
    }

    @Test func aRestartLeftPendingByTheAssetsStepCountsAsAStaleProcess() throws {
        #expect(K3sServiceStep().probe(for: try #require(try inventory().host(named: "a1"))).contains("[ -e /var/lib/provision/k3s-restart-pending ] && stale=1"))
    }

    /// Runs `host`'s k3s-service probe under /bin/sh with `tools` (name → shell body) first on the PATH. Each tool
    /// logs `<name> <arguments>` before its body runs; returns the probe's output and that log, one call per line.
    func runProbe(on host: String, tools: [String: String]) throws -> (output: String, calls: [String]) {
        let bin = FileManager.default.temporaryDirectory.appendingPathComponent("probe-tools-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: bin) }
        let calls = bin.appendingPathComponent("calls").path
        for (name, body) in tools {
            try "#!/bin/sh\necho \"\(name) $*\" >> \(calls)\n\(body)\n"
                .write(to: bin.appendingPathComponent(name), atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin.appendingPathComponent(name).path)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", K3sServiceStep().probe(for: try #require(try inventory().host(named: host)))]
        process.environment = ["PATH": bin.path + ":/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let log = (try? String(contentsOfFile: calls, encoding: .utf8)) ?? ""
        return (output, log.split(separator: "\n").map(String.init))
    }

    /// The agent's probe reads both units with one `systemctl show`. Real systemd prints a unit's properties in its
    /// own order (Id after MainPID here) and leaves UnitFileState empty for a unit without a file: the probe, run by
    /// /bin/sh against a systemctl that answers that way, still gives each unit its own state.
    @Test func oneSystemctlShowGivesEachUnitItsStateWhateverTheOrderOfItsLines() throws {
        let (output, calls) = try runProbe(on: "a1", tools: [
            "systemctl": "printf 'MainPID=0\\nActiveState=inactive\\nUnitFileState=\\nId=k3s.service\\n\\n'\n"
                + "printf 'UnitFileState=enabled\\nMainPID=1\\nId=k3s-agent.service\\nActiveState=active\\n'",
        ])
        #expect(K3sServiceStep.state(output, unit: "k3s") == .init(active: "inactive", enabled: "", stale: false))
        // PID 1 started long before any /usr/local/bin/k3s here: not stale.
        #expect(K3sServiceStep.state(output, unit: "k3s-agent") == .init(active: "active", enabled: "enabled", stale: false))
        #expect(calls.count == 1)
    }

    /// On a server, kubectl is asked about readiness only when k3s is active, and that is read from the same single
    /// `systemctl show`, not from a second systemctl.
    @Test(arguments: ["active", "inactive"])
    func aServerAsksKubectlOnlyWhenTheOneShowSaysK3sIsActive(_ state: String) throws {
        let (output, called) = try runProbe(on: "s1", tools: [
            "systemctl": "printf 'Id=k3s.service\\nMainPID=0\\nActiveState=\(state)\\nUnitFileState=enabled\\n\\n'\n"
                + "printf 'Id=k3s-agent.service\\nMainPID=0\\nActiveState=inactive\\nUnitFileState=\\n'",
            "k3s": "case \"$*\" in *readyz*) echo ok ;; *) echo True ;; esac",
        ])
        #expect(called.filter { $0.hasPrefix("systemctl") }.count == 1)
        let server = K3sServiceStep.state(output, unit: "k3s")
        #expect(server.active == state)
        if state == "active" {
            #expect(server.readyz == "ok" && server.node == "True")
        } else {
            #expect(server.readyz == nil && server.node == nil)
            #expect(!called.contains { $0.hasPrefix("k3s") })
        }
    }

    @Test func aRunningAgentIsDrainedOnTheFirstServerBeforeItsUpgradeAndUncordonedAfter() throws {
        let probe = "k3s inactive disabled stale=0\nk3s-agent active enabled stale=0"
        let decision = try K3sServiceStep().decide(try context(try inventory(), "a1", probe: probe, facts: facts("v1.30.2+k3s1")))
        guard decision.actions.count == 4, case .runOn(let drainHost, let drain) = decision.actions[1],
              case .run(let install) = decision.actions[2], case .runOn(_, let uncordon) = decision.actions[3] else {
            Issue.record("unexpected actions \(decision.actions)"); return
        }
        #expect(decision.actions[0] == .disruptive(group: K3s.agentsGroup))
        #expect(drainHost == "s1")
        #expect(drain.contains("k3s kubectl cordon a1") && drain.contains("k3s kubectl drain a1 --ignore-daemonsets"))
        #expect(install.contains("INSTALL_K3S_EXEC=agent"))
        #expect(uncordon.hasPrefix("k3s kubectl uncordon a1 "))
        // A fresh agent is not in the cluster yet: nothing to drain, and agents join in parallel.
        let fresh = try K3sServiceStep().decide(try context(try inventory(), "a1", probe: "k3s inactive \nk3s-agent inactive ",
                                                           facts: facts(nil)))
        guard case .run(let command) = fresh.actions.first, fresh.actions.count == 1 else { Issue.record("no install"); return }
        #expect(command.contains("INSTALL_K3S_EXEC=agent") && !command.contains("FORCE") && !command.contains("tok"))
    }

    @Test func theInventoryTokenMustBeTheRunningClustersBeforeAnythingIsWritten() throws {
        let inventory = try inventory()        // token tok'en
        let step = K3sTokenStep()
        let cluster = "file=K10abc::server:tok'en\nconfig="
        #expect(try step.decide(try context(inventory, "s1", probe: cluster)) == .ok("the inventory's token is the running cluster's"))
        #expect(step.shares(try context(inventory, "s1", probe: cluster)) == [K3sTokenStep.sharedKey: "tok'en"])
        do {
            _ = try step.decide(try context(inventory, "s1", probe: "file=K10abc::server:other\nconfig="))
            Issue.record("a wrong token was accepted")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("not the token of the cluster already running on s1") && !text.contains("other"))
        }
        #expect(try step.decide(try context(inventory, "s1", probe: "file=\nconfig=")).reason == "new cluster: the inventory's token")
    }

    @Test func withoutATokenInTheInventoryTheClustersOwnIsReadBackOrOneIsGenerated() throws {
        let inventory = try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, airgap: {directory: /srv/k3s}}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
        let step = K3sTokenStep()
        let running = try context(inventory, "s1", probe: "file=K10abc::server:s3cret\nconfig='s3cret'")
        #expect(step.shares(running) == [K3sTokenStep.sharedKey: "s3cret"])
        let earlier = try context(inventory, "s1", probe: "file=\nconfig='half''way'")
        #expect(step.shares(earlier) == [K3sTokenStep.sharedKey: "half'way"])
        let fresh = step.shares(try context(inventory, "s1", probe: "file=\nconfig="))[K3sTokenStep.sharedKey] ?? ""
        let again = step.shares(try context(inventory, "s1", probe: "file=\nconfig="))[K3sTokenStep.sharedKey]
        #expect(fresh.count == 64 && fresh != again)
        // The agents' config carries what the first server shared; without it, the error says how to get it.
        var agent = try context(inventory, "a1", probe: "absent")
        #expect(throws: StepError.self) { try K3sConfigStep().decide(agent) }
        agent.shared = [K3sTokenStep.sharedKey: "s3cret"]
        guard case .writeFile(_, let content, _, _) = try K3sConfigStep().decide(agent).actions.first else {
            Issue.record("no write"); return
        }
        #expect(content.contains("token: 's3cret'\n"))
    }

    @Test func readinessNamesTheNodeAndItsLastCondition() throws {
        let inventory = try inventory()
        let json = """
            {"kind":"List","items":[
             {"metadata":{"name":"s1","labels":{"node-role.kubernetes.io/control-plane":"true"}},
              "status":{"conditions":[{"type":"Ready","status":"True","message":"kubelet is posting ready status"}]}},
             {"metadata":{"name":"a1","labels":{"disk":"ssd"}},
              "status":{"conditions":[{"type":"Ready","status":"Unknown","message":"Kubelet stopped posting node status."}]}},
             {"metadata":{"name":"stray","labels":{}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}]}
            """
        let waiting = try K3sReadyStep().decide(try context(inventory, "s1", probe: json))
        #expect(waiting.reason == "node a1 is not Ready: Kubelet stopped posting node status.")
        #expect(waiting.actions == [.awaitConvergence(timeout: K3sReadyStep.timeout)])
        let ready = try K3sReadyStep().decide(try context(inventory, "s1", probe: json.replacing("\"Unknown\"", with: "\"True\"")))
        #expect(ready == .ok("2 node(s) Ready with their labels; warning: Ready nodes not in the inventory: stray"))
        let old = try K3sReadyStep().decide(try context(inventory, "s1", probe: json.replacing("\"Unknown\"", with: "\"True\"")
            .replacing("\"status\":{\"conditions\"", with: "\"status\":{\"nodeInfo\":{\"kubeletVersion\":\"v1.30.2+k3s1\"},\"conditions\"")))
        #expect(old.reason.hasPrefix("node s1 runs v1.30.2+k3s1, inventory wants v1.31.4+k3s1"))
        // A node an interrupted upgrade left cordoned (and only such a node) is uncordoned.
        let cordoned = json.replacing("{\"metadata\":{\"name\":\"a1\",", with: "{\"spec\":{\"unschedulable\":true},\"metadata\":{\"name\":\"a1\",\"annotations\":{\"provision/drained\":\"upgrade\"},")
        let uncordon = try K3sReadyStep().decide(try context(inventory, "s1", probe: cordoned))
        #expect(uncordon.actions.first == .run("k3s kubectl uncordon a1 && k3s kubectl annotate node a1 provision/drained-"))
        let byAdmin = cordoned.replacing("\"annotations\":{\"provision/drained\":\"upgrade\"},", with: "")
        #expect(try K3sReadyStep().decide(try context(inventory, "s1", probe: byAdmin)).actions == [.awaitConvergence(timeout: K3sReadyStep.timeout)])
    }

    @Test func assetsFollowTheHostsArchitecture() {
        #expect(K3s.binaryAsset(arch: "x86_64") == "k3s")
        #expect(K3s.binaryAsset(arch: "aarch64") == "k3s-arm64")
        #expect(K3s.binaryAsset(arch: "armv7l") == "k3s-armhf")
        #expect(K3s.imagesAsset(arch: "armv7l") == "k3s-airgap-images-arm")
        #expect(K3s.binaryAsset(arch: "riscv64") == nil)
    }

    /// A digest kept for the file as `stat` describes it is used without reading the file; any write makes the
    /// file be hashed again.
    @Test func aKeptLocalDigestIsUsedUntilTheFileChanges() throws {
        let path = NSTemporaryDirectory() + "digest-test-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "images v1".write(toFile: path, atomically: false, encoding: .utf8)
        let kept = String(repeating: "f", count: 64)
        K3s.remember([FileDigest(path: path, identity: try K3s.identity(ofFile: path), sha256: kept)])
        #expect(try K3s.digest(ofFile: path) == kept)
        try "images v2".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try K3s.digest(ofFile: path) == ManagedFile.digest("images v2"))
        // Just written: not offered to the journal, so a write in the same clock tick cannot hide behind it.
        #expect(!K3s.knownDigests().contains { $0.path == path })
    }
}
