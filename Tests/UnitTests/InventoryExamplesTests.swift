import Foundation
import Testing
@testable import Inventory

@Suite("Inventory: the shipped example inventories")
struct InventoryExamplesTests {
    @Test("inventories/example.yaml loads with nothing but HOME")
    func example() throws {
        let path = InventoryFixtures.example("example.yaml")
        let inventory = try InventoryLoader.load(path: path, environment: ["HOME": "/home/op"])
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path

        #expect(inventory.path == path)
        #expect(inventory.k3s == K3sSettings(
            version: "v1.31.4+k3s1", tlsSan: ["k3s.example.lan", "10.0.0.10"], disable: ["traefik"],
            writeKubeconfigMode: "0644",
            config: [ConfigEntry(key: "kube-apiserver-arg", value: .list(["audit-log-maxage=30"]))]))
        #expect(inventory.firstServer?.name == "cp-1")
        #expect(inventory.hosts.map(\.name) == ["cp-1", "worker-1", "worker-2", "ci-1"])
        #expect(inventory.secrets.isEmpty)

        let server = try #require(inventory.host(named: "cp-1"))
        #expect(server.roles == [.server])
        #expect(server.ssh == SSHSettings(
            user: "admin", port: 22, keyPath: "/home/op/.ssh/id_ed25519", useAgent: false,
            knownHosts: folder + "/known_hosts", hostKeyPolicy: .acceptNew,
            hostKeyFingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
            connectTimeout: 15, keepalive: 30))

        let worker = try #require(inventory.host(named: "worker-1"))
        #expect(worker.labels == [Label(key: "disk", value: "ssd"),
                                  Label(key: "topology.kubernetes.io/zone", value: "rack-a")])
        #expect(worker.label("disk") == "ssd")
        #expect(worker.ssh.hostKeyFingerprint == nil)

        let ipv6 = try #require(inventory.host(named: "worker-2"))
        #expect(ipv6.address == "fd00::20")
        #expect(ipv6.ssh.port == 2222)
        #expect(ipv6.has(.agent) && ipv6.has(.runner) && !ipv6.has(.server))
        #expect(ipv6.taints == ["dedicated=ci:PreferNoSchedule"])
        #expect(ipv6.nodeName == "worker-2.ci")
        #expect(worker.nodeName == "worker-1" && worker.taints.isEmpty)

        let ci = try #require(inventory.host(named: "ci-1"))
        #expect(ci.ssh.user == "root")
        #expect(ci.ssh.keyPath == "/home/op/.ssh/ci_ed25519")
        #expect(inventory.hosts(with: .runner).map(\.name) == ["worker-2", "ci-1"])
    }

    @Test("the secret commented out in inventories/example.yaml works once uncommented")
    func exampleWithSecret() throws {
        let path = InventoryFixtures.example("example.yaml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "  # sudoPassword: ", with: "  sudoPassword: ")
        #expect(InventoryFixtures.problems(text) == [
            "/srv/inventory.yaml:12:17: environment variable 'PROVISION_SUDO_PASSWORD' is not set (in sudoPassword)",
        ])
        let inventory = try InventoryFixtures.parse(
            text, environment: ["HOME": "/home/op", "PROVISION_SUDO_PASSWORD": "sudo-secret"])
        #expect(inventory.hosts.allSatisfy { $0.ssh.sudoPassword == "sudo-secret" })
        #expect(inventory.secrets == ["sudo-secret"])
    }

    @Test("the k3s settings commented out in inventories/example.yaml work once uncommented, one at a time")
    func exampleWithK3sOptions() throws {
        let path = InventoryFixtures.example("example.yaml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let withToken = text.replacingOccurrences(of: "  # token: ", with: "  token: ")
        let inventory = try InventoryFixtures.parse(
            withToken, environment: ["HOME": "/home/op", "K3S_TOKEN": "k3s-secret"])
        #expect(inventory.k3s?.token == "k3s-secret")
        #expect(inventory.secrets == ["k3s-secret"])

        let airgap = try InventoryFixtures.parse(
            text.replacingOccurrences(of: "  # airgap: ", with: "  airgap: "))
        #expect(airgap.k3s?.airgapDirectory == "/srv/k3s-assets")
        let mirror = try InventoryFixtures.parse(
            text.replacingOccurrences(of: "  # installScriptURL: ", with: "  installScriptURL: "))
        #expect(mirror.k3s?.installScriptURL == "https://mirror.example.lan/k3s/install.sh")
    }

    @Test("inventories/raspberry-pi.yaml loads with nothing but HOME")
    func raspberryPi() throws {
        let path = InventoryFixtures.example("raspberry-pi.yaml")
        let inventory = try InventoryLoader.load(path: path, environment: ["HOME": "/home/op"])
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path

        #expect(inventory.hosts.map(\.name) == ["pi-1", "pi-2", "pi-3"])
        #expect(inventory.hosts.map(\.address) == ["192.168.1.11", "192.168.1.12", "pi-3.local"])
        #expect(inventory.hosts.map(\.roles) == [[.server], [.agent, .runner], [.agent]])
        #expect(inventory.secrets.isEmpty)
        #expect(inventory.hosts[0].location == SourceLocation(file: path, line: 22, column: 5))
        #expect(inventory.k3s == K3sSettings(version: "v1.31.4+k3s1", disable: ["traefik"]))
        #expect(inventory.servers.map(\.name) == ["pi-1"])
        for host in inventory.hosts {
            #expect(host.ssh.user == "pi")
            #expect(host.ssh.keyPath == "/home/op/.ssh/id_ed25519")
            #expect(host.ssh.knownHosts == folder + "/raspberry-pi.known_hosts")
            #expect(host.ssh.keepalive == 15)
        }
        #expect(inventory.host(named: "pi-2")?.labels == [Label(key: "disk", value: "ssd")])
    }
}
