import Foundation
import Testing
@testable import Inventory

@Suite("Inventory: ssh settings, defaults and paths")
struct InventorySSHTests {
    @Test("a host without any ssh block gets every default")
    func defaults() throws {
        let inventory = try InventoryFixtures.parse("hosts: [{name: a, address: 10.0.0.1, roles: [server]}]\n")
        #expect(inventory.hosts[0].ssh == SSHSettings(
            user: "root", port: 22, useAgent: true, knownHosts: "/home/op/.ssh/known_hosts",
            hostKeyPolicy: .strict, connectTimeout: 10, keepalive: 30))
        #expect(inventory.k3s == nil)
        #expect(inventory.path == "/srv/inventory.yaml")
    }

    @Test("a host's ssh block overrides the defaults key by key, and null drops an inherited key")
    func merging() throws {
        let path = try InventoryFixtures.path("ssh-merge.yaml")
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let environment = ["HOME": "/home/op", "FLEET_KEY_PASSPHRASE": "key-secret", "FLEET_SUDO": "sudo-secret",
                           "RUNNER_PASSWORD": "runner-secret"]
        let inventory = try InventoryLoader.load(path: path, environment: environment)
        let inherited = SSHSettings(
            user: "admin", port: 2200, keyPath: folder + "/keys/fleet_ed25519", keyPassphrase: "key-secret",
            useAgent: false, knownHosts: "/home/op/.ssh/known_hosts", sudoPassword: "sudo-secret",
            connectTimeout: 2.5, keepalive: 0)

        #expect(inventory.host(named: "inherits")?.ssh == inherited)

        var overridden = inherited
        overridden.user = "root"
        overridden.port = 22
        overridden.useAgent = true
        overridden.knownHosts = "/home/op/fleet/known_hosts"
        overridden.hostKeyPolicy = .acceptNew
        overridden.hostKeyFingerprint = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
        overridden.keepalive = 45
        #expect(inventory.host(named: "overrides")?.ssh == overridden)

        var passwordOnly = inherited
        passwordOnly.keyPath = nil
        passwordOnly.keyPassphrase = nil
        passwordOnly.password = "runner-secret"
        #expect(inventory.host(named: "password-only")?.ssh == passwordOnly)

        #expect(inventory.secrets == ["key-secret", "sudo-secret", "runner-secret"])
    }

    @Test("agent defaults to true only when there is neither keyPath nor password",
          arguments: [("{}", true), ("{keyPath: /k}", false), ("{password: pw}", false),
                      ("{keyPath: /k, agent: true}", true), ("{agent: false, password: pw}", false)])
    func agentDefault(ssh: String, useAgent: Bool) throws {
        let inventory = try InventoryFixtures.parse("""
            ssh: \(ssh)
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """)
        #expect(inventory.hosts[0].ssh.useAgent == useAgent)
    }

    @Test("paths: ~ is HOME, relative paths are relative to the inventory's folder, all are absolute",
          arguments: [("~", "/home/op"), ("~/.ssh/id_rsa", "/home/op/.ssh/id_rsa"),
                      ("keys/id", "/srv/site/keys/id"), ("./keys/../id", "/srv/site/id"),
                      ("../shared//id", "/srv/shared/id"), ("/etc/ssh/key", "/etc/ssh/key")])
    func paths(written: String, resolved: String) throws {
        let inventory = try InventoryLoader.parse(yaml: """
            ssh: {keyPath: "\(written)", knownHosts: "\(written)"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, path: "/srv/site/inventory.yaml", environment: ["HOME": "/home/op/"])
        #expect(inventory.hosts[0].ssh.keyPath == resolved)
        #expect(inventory.hosts[0].ssh.knownHosts == resolved)
    }

    @Test("a relative inventory path is taken from the current directory")
    func relativeInventoryPath() throws {
        let inventory = try InventoryLoader.parse(yaml: """
            ssh: {keyPath: id}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, path: "site/inventory.yaml", environment: InventoryFixtures.environment)
        let cwd = FileManager.default.currentDirectoryPath
        #expect(inventory.path == InventoryPaths.normalized(cwd + "/site/inventory.yaml"))
        #expect(inventory.hosts[0].ssh.keyPath == InventoryPaths.normalized(cwd + "/site/id"))
    }

    @Test("~user paths are refused")
    func tildeUser() {
        #expect(InventoryFixtures.problems("""
            ssh: {keyPath: ~bob/id}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """) == ["/srv/inventory.yaml:1:16: keyPath '~bob/id': '~user' paths are not supported; "
                     + "use '~/…' or an absolute path"])
    }

    @Test("values of the wrong type or out of range, each at its value")
    func wrongValues() {
        #expect(InventoryFixtures.problems("""
            ssh:
              port: abc
              agent: maybe
              connectTimeout: 10s
              keepalive: -1
              hostKeyPolicy: accept_new
              user: [a, b]
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server], ssh: {port: 70000, connectTimeout: 0}}
              - {name: b, address: 10.0.0.2, roles: [agent], ssh: {port: }}
            """) == [
            "/srv/inventory.yaml:2:9: port must be an integer, got 'abc'",
            "/srv/inventory.yaml:3:10: agent must be true or false, got 'maybe'",
            "/srv/inventory.yaml:4:19: connectTimeout must be a number of seconds, got '10s'",
            "/srv/inventory.yaml:5:14: keepalive must be 0 or more, got -1",
            "/srv/inventory.yaml:6:18: hostKeyPolicy must be 'strict' or 'accept-new', got 'accept_new'; "
                + "did you mean 'accept-new'?",
            "/srv/inventory.yaml:7:9: user must be a string, got a list",
            "/srv/inventory.yaml:9:63: port must be between 1 and 65535, got 70000",
            "/srv/inventory.yaml:9:86: connectTimeout must be more than 0 seconds, got '0'",
            "/srv/inventory.yaml:10:56: port must be an integer, got nothing",
        ])
    }

    @Test("numbers may be quoted or come from the environment")
    func numbersAsText() throws {
        let inventory = try InventoryFixtures.parse("""
            ssh: {port: "${env:SSH_PORT}", keepalive: "5", agent: "yes"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, environment: ["HOME": "/home/op", "SSH_PORT": "2222"])
        #expect(inventory.hosts[0].ssh.port == 2222)
        #expect(inventory.hosts[0].ssh.keepalive == 5)
        #expect(inventory.hosts[0].ssh.useAgent)
    }

    @Test("hostKeyFingerprint: per host only, and in ssh-keygen's form")
    func fingerprint() {
        #expect(InventoryFixtures.problems("""
            ssh: {hostKeyFingerprint: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s}
            hosts:
              - name: a
                address: 10.0.0.1
                roles: [server]
                ssh: {hostKeyFingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s="}
            """) == [
            "/srv/inventory.yaml:1:7: hostKeyFingerprint is only allowed in a host's ssh block, "
                + "since each host has its own key",
            "/srv/inventory.yaml:6:31: hostKeyFingerprint must be 'SHA256:' followed by 43 base64 characters "
                + "without '=' padding, as 'ssh-keygen -lf' prints it; "
                + "got 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s='",
        ])
    }

    @Test("a host with agent off and no key or password cannot log in")
    func noWayToLogIn() {
        #expect(InventoryFixtures.problems("""
            ssh: {agent: false}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [agent], ssh: {keyPath: ~/.ssh/id}}
              - {name: b, address: 10.0.0.2, roles: [server]}
            """) == [
            "/srv/inventory.yaml:4:5: host 'b' has no way to log in: agent is false and neither keyPath nor "
                + "password is set",
        ])
    }
}
