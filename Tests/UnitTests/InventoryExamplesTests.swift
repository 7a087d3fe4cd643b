import Foundation
import Testing
@testable import Inventory

@Suite("Inventory: the shipped example inventories")
struct InventoryExamplesTests {
    /// The one secret both examples need: the GitLab token their runners register with.
    static let environment = ["HOME": "/home/op", "GITLAB_TOKEN": "gitlab-secret"]

    @Test("inventories/example.yaml loads with nothing but HOME and GITLAB_TOKEN")
    func example() throws {
        let path = InventoryFixtures.example("example.yaml")
        let inventory = try InventoryLoader.load(path: path, environment: Self.environment)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path

        #expect(inventory.path == path)
        #expect(inventory.k3s == K3sSettings(
            version: "v1.31.4+k3s1", tlsSan: ["k3s.example.lan", "10.0.0.10"], disable: ["traefik"],
            writeKubeconfigMode: "0644",
            config: [ConfigEntry(key: "kube-apiserver-arg", value: .list(["audit-log-maxage=30"]))]))
        #expect(inventory.firstServer?.name == "cp-1")
        #expect(inventory.hosts.map(\.name) == ["cp-1", "worker-1", "worker-2", "ci-1"])
        #expect(inventory.secrets == ["gitlab-secret"])
        #expect(inventory.docker == DockerSettings(package: .dockerCE))
        #expect(inventory.gitlab == GitLabSettings(
            url: "https://gitlab.example.lan", caFile: folder + "/gitlab-ca.pem", token: "gitlab-secret",
            runnerPackage: RunnerPackageSettings(version: "17.7.1"), concurrent: 2,
            runners: [RunnerSettings(name: "docker", executor: .docker, runnerType: .projectType, projectId: 42,
                                     tags: ["docker", "amd64"], runUntagged: false, image: "docker:27",
                                     privileged: true, volumes: ["/certs/client", "/cache"])]))

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
        #expect(InventoryFixtures.problems(text, environment: Self.environment) == [
            "/srv/inventory.yaml:12:17: environment variable 'PROVISION_SUDO_PASSWORD' is not set (in sudoPassword)",
        ])
        let inventory = try InventoryFixtures.parse(
            text, environment: Self.environment.merging(["PROVISION_SUDO_PASSWORD": "sudo-secret"]) { $1 })
        #expect(inventory.hosts.allSatisfy { $0.ssh.sudoPassword == "sudo-secret" })
        #expect(inventory.secrets == ["sudo-secret", "gitlab-secret"])
    }

    @Test("the k3s settings commented out in inventories/example.yaml work once uncommented, one at a time")
    func exampleWithK3sOptions() throws {
        let path = InventoryFixtures.example("example.yaml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let withToken = text.replacingOccurrences(of: "  # token: ", with: "  token: ")
        let inventory = try InventoryFixtures.parse(
            withToken, environment: Self.environment.merging(["K3S_TOKEN": "k3s-secret"]) { $1 })
        #expect(inventory.k3s?.token == "k3s-secret")
        #expect(inventory.secrets == ["k3s-secret", "gitlab-secret"])

        let airgap = try InventoryFixtures.parse(
            text.replacingOccurrences(of: "  # airgap: ", with: "  airgap: "), environment: Self.environment)
        #expect(airgap.k3s?.airgapDirectory == "/srv/k3s-assets")
        let mirror = try InventoryFixtures.parse(
            text.replacingOccurrences(of: "  # installScriptURL: ", with: "  installScriptURL: "),
            environment: Self.environment)
        #expect(mirror.k3s?.installScriptURL == "https://mirror.example.lan/k3s/install.sh")
    }

    @Test("the docker settings commented out in inventories/example.yaml work once uncommented")
    func exampleWithDockerOptions() throws {
        let text = try String(contentsOfFile: InventoryFixtures.example("example.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "  # version: ", with: "  version: ")
            .replacingOccurrences(of: "  # aptRepository: ", with: "  aptRepository: ")
        let inventory = try InventoryFixtures.parse(text, environment: Self.environment)
        #expect(inventory.docker == DockerSettings(package: .dockerCE, version: "5:27.5.1-1~debian.12~bookworm",
                                                   aptRepository: "https://mirror.example.lan/docker/linux/debian"))
    }

    @Test("inventories/raspberry-pi.yaml loads with nothing but HOME and GITLAB_TOKEN")
    func raspberryPi() throws {
        let path = InventoryFixtures.example("raspberry-pi.yaml")
        let inventory = try InventoryLoader.load(path: path, environment: Self.environment)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path

        #expect(inventory.hosts.map(\.name) == ["pi-1", "pi-2", "pi-3"])
        #expect(inventory.hosts.map(\.address) == ["192.168.1.11", "192.168.1.12", "pi-3.local"])
        #expect(inventory.hosts.map(\.roles) == [[.server], [.agent, .runner], [.agent]])
        #expect(inventory.secrets == ["gitlab-secret"])
        #expect(inventory.hosts[0].location == SourceLocation(file: path, line: 31, column: 5))
        #expect(inventory.docker == nil)
        #expect(inventory.gitlab?.runners == [RunnerSettings(name: "docker", runnerType: .groupType, groupId: 7,
                                                             tags: ["pi", "arm64"], image: "alpine:3.20")])
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
