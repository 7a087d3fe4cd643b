import Foundation
import Testing
import Facts
import Inventory
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

    @Test func aChangedConfigRestartsThatNodesServiceOnlyWhenInstalled() throws {
        let inventory = try inventory()
        let other = String(repeating: "0", count: 64) + " 600 root:root"
        let installed = try K3sConfigStep().decide(try context(inventory, "a1", probe: "\(other)\nunit=k3s-agent"))
        #expect(installed.actions.last == .run("systemctl restart k3s-agent"))
        let fresh = try K3sConfigStep().decide(try context(inventory, "a1", probe: other))
        #expect(fresh.actions.count == 1)
    }

    @Test func theServiceIsLeftAloneAtTheWantedVersionAndUpgradedOtherwise() throws {
        let inventory = try inventory()
        var facts = HostFacts()
        facts.versions.k3s = "v1.31.4+k3s1"
        let running = "k3s active enabled\nk3s-agent inactive disabled"
        #expect(try K3sServiceStep().decide(try context(inventory, "s1", probe: running, facts: facts)).actions.isEmpty)
        facts.versions.k3s = "v1.30.2+k3s1"
        let upgrade = try K3sServiceStep().decide(try context(inventory, "s1", probe: running, facts: facts))
        #expect(upgrade.reason == "k3s v1.30.2+k3s1 installed, inventory wants v1.31.4+k3s1")
        #expect(upgrade.actions == [.run("INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=server INSTALL_K3S_FORCE_RESTART=true timeout 300 sh /usr/local/share/provision/k3s-install.sh")])
        let agent = try K3sServiceStep().decide(try context(inventory, "a1", probe: "k3s inactive \nk3s-agent inactive "))
        guard case .run(let command) = agent.actions.first else { Issue.record("no install"); return }
        #expect(command.contains("INSTALL_K3S_EXEC=agent") && !command.contains("tok"))
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
    }

    @Test func assetsFollowTheHostsArchitecture() {
        #expect(K3s.binaryAsset(arch: "x86_64") == "k3s")
        #expect(K3s.binaryAsset(arch: "aarch64") == "k3s-arm64")
        #expect(K3s.binaryAsset(arch: "armv7l") == "k3s-armhf")
        #expect(K3s.imagesAsset(arch: "armv7l") == "k3s-airgap-images-arm")
        #expect(K3s.binaryAsset(arch: "riscv64") == nil)
    }
}
