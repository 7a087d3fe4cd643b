import Foundation
import LabSupport
import Testing

/// The built `provision` binary against lab hosts: what an admin sees on stdout, stderr and in the exit code.
@Suite(.serialized) struct CLITests {
    func provision(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessOutput {
        try run(Repo.provisionBinary, arguments, environment: environment)
    }

    func countLines(_ text: String, containing needle: String) -> Int {
        text.split(separator: "\n").filter { $0.contains(needle) }.count
    }

    @Test func factsOnAPiAndTwoDebianHostsInOneRoundTripEach() async throws {
        try await withLab(hosts: 3, pi: [3]) { lab in
            let result = try provision(["facts", lab.inventoryPath, "--output", "json"])
            #expect(result.status == 0, "\(result.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let hosts = try #require(json["hosts"] as? [[String: Any]])
            #expect(hosts.map { $0["name"] as? String } == ["lab-1", "lab-2", "lab-3"])
            for host in hosts {
                #expect(host["hostname"] as? String == host["name"] as? String)
                #expect((host["os"] as? [String: Any])?["id"] as? String == "debian")
                #expect(host["bootId"] as? String != nil)
                let versions = try #require(host["versions"] as? [String: Any])
                #expect(versions["k3s"] is NSNull && versions["docker"] is NSNull && versions["gitlabRunner"] is NSNull)
            }
            #expect(hosts[2]["board"] as? String == "Raspberry Pi 4 Model B Rev 1.5")
            #expect(hosts[2]["arch"] as? String == "aarch64")
            #expect(hosts[2]["memoryCgroup"] as? Bool == false)
            #expect(hosts[0]["board"] is NSNull)
            #expect(hosts[0]["arch"] as? String == "x86_64")
            #expect(hosts[0]["memoryCgroup"] as? Bool == true)
            // The hosts' own sshd logs: one connection and one command per host.
            for host in lab.hosts {
                let log = lab.sshdLog(host.name)
                #expect(countLines(log, containing: "Accepted publickey") == 1, "\(host.name)")
                #expect(countLines(log, containing: "Starting session: command") == 1, "\(host.name)")
            }
        }
    }

    @Test func factsTableHasOneRowPerHost() async throws {
        try await withLab(hosts: 2) { lab in
            let result = try provision(["facts", lab.inventoryPath])
            #expect(result.status == 0)
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("HOST   HOSTNAME  OS               ARCH    BOARD  MEMORY") == true)
            #expect(lines.count == 3)
            #expect(lines[1].hasPrefix("lab-1  lab-1     debian bookworm  x86_64  -"))
        }
    }

    @Test func oneBadHostFailsAloneWithAOneLineReason() async throws {
        try await withLab(hosts: 2) { lab in
            let inventory = try lab.inventory(unreachable: "lab-2")
            let result = try provision(["facts", inventory, "--output", "json"])
            #expect(result.status == 1)
            #expect(result.stderr == "lab-2: cannot connect to \(lab.hosts[1].address):2: Connection refused\n")
            #expect(result.stdout.contains("\"hostname\" : \"lab-1\""))
        }
    }

    @Test func execPrefixesOutputAndFailsOnANonZeroExit() async throws {
        try await withLab(hosts: 2) { lab in
            let ok = try provision(["exec", lab.inventoryPath, "--", "hostname"])
            #expect(ok.status == 0)
            #expect(Set(ok.stdout.split(separator: "\n")) == ["lab-1 | lab-1", "lab-2 | lab-2"])
            let failing = try provision(["exec", lab.inventoryPath, "--host", "lab-2", "--", "echo out; echo err >&2; exit 4"])
            #expect(failing.status == 1)
            #expect(failing.stdout == "lab-2 | out\n")
            #expect(failing.stderr == "lab-2 | err\nlab-2: exit 4\n")
            let unknown = try provision(["exec", lab.inventoryPath, "--host", "nope", "--", "true"])
            #expect(unknown.status != 0)
            #expect(unknown.stderr.contains("no host named nope"))
        }
    }

    /// No keyPath and no password in the inventory: the key comes from a running ssh-agent.
    @Test func anSSHAgentLogsIn() async throws {
        try await withLab(hosts: 1) { lab in
            let socket = lab.directory + "/agent.sock"
            let agent = try Background("/usr/bin/ssh-agent", ["-D", "-a", socket])
            // SIGKILL: a child of Foundation's Process inherits a blocked signal mask and would ignore SIGTERM.
            defer { agent.kill(SIGKILL) }
            var environment = ProcessInfo.processInfo.environment
            environment["SSH_AUTH_SOCK"] = socket
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(20)) }
            #expect(try run("/usr/bin/ssh-add", ["-q", lab.keyPath], environment: environment).status == 0)
            let inventory = lab.directory + "/agent.yaml"
            try """
                ssh: {user: root, knownHosts: \(lab.knownHostsPath)}
                k3s: {version: v1.31.4+k3s1}
                hosts:
                  - {name: lab-1, address: \(lab.hosts[0].address), roles: [server]}
                """.write(toFile: inventory, atomically: true, encoding: .utf8)
            let result = try provision(["exec", inventory, "--", "id -un"], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "lab-1 | root\n")
            environment["SSH_AUTH_SOCK"] = nil
            let without = try provision(["exec", inventory, "--", "id -un"], environment: environment)
            #expect(without.status == 1)
            #expect(without.stderr.contains("no ssh-agent to ask (SSH_AUTH_SOCK is not set"))
        }
    }

    @Test func execAsAliceThroughSudoNeverShowsThePassword() async throws {
        try await withLab(hosts: 1) { lab in
            let inventory = lab.directory + "/alice.yaml"
            let text = """
                ssh: {user: alice, keyPath: \(lab.keyPath), knownHosts: \(lab.knownHostsPath), sudoPassword: "${env:LAB_SUDO}"}
                k3s: {version: v1.31.4+k3s1}
                hosts:
                  - {name: lab-1, address: \(lab.hosts[0].address), roles: [server]}
                """
            try text.write(toFile: inventory, atomically: true, encoding: .utf8)
            var environment = ProcessInfo.processInfo.environment
            environment["LAB_SUDO"] = lab.alicePassword
            let result = try provision(["exec", inventory, "--sudo", "-v", "--", "id -u; echo \(lab.alicePassword)"],
                                       environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout == "lab-1 | 0\nlab-1 | [REDACTED]\n")
            #expect(!result.stderr.contains(lab.alicePassword))
        }
    }
}

/// `provision inventory check` needs no hosts.
@Suite struct InventoryCheckCLITests {
    @Test func everyProblemAtOnceWithFileLineAndColumn() throws {
        let path = NSTemporaryDirectory() + "broken-\(UUID().uuidString).yaml"
        try """
            ssh: {user: root, prot: 22}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [agent]}
              - {name: a, address: 10.0.0.2, roles: [master]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(Repo.provisionBinary, ["inventory", "check", path])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count >= 4, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix(path + ":") })
        #expect(result.stderr.contains("\(path):1:19: unknown key 'prot'"))
        #expect(result.stderr.contains("did you mean 'port'?"))
        #expect(result.stderr.contains("master"))
        #expect(result.stderr.contains("duplicate"))
    }

    @Test func theShippedExamplesAreValid() throws {
        for name in ["example.yaml", "raspberry-pi.yaml", "lab.yaml"] {
            let result = try run(Repo.provisionBinary, ["inventory", "check", Repo.root + "/inventories/" + name],
                                 environment: ["HOME": "/root", "PROVISION_SUDO_PASSWORD": "p", "LAB_K3S_TOKEN": "t",
                                               "GITLAB_TOKEN": "g", "LAB_GITLAB_TOKEN": "g",
                                               "PROVISION_CI_1_PASSWORD": "p", "PATH": "/usr/bin:/bin"])
            #expect(result.status == 0, "\(name): \(result.stderr)")
        }
    }
}
