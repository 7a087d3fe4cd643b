import Testing
@testable import Inventory

@Suite("Inventory: ${env:NAME} in values")
struct InventoryEnvironmentTests {
    private func inventory(_ yaml: String, environment: [String: String]) throws -> Inventory {
        try InventoryFixtures.parse(yaml, environment: environment.merging(["HOME": "/home/op"]) { a, _ in a })
    }

    @Test("references are replaced anywhere in a value, several times, mixed with text")
    func expansion() throws {
        let inventory = try inventory("""
            hosts:
              - name: ${env:SITE}-${env:N}
                address: ${env:SITE}-${env:N}.${env:DOMAIN}
                roles: [server]
                labels: {site: "${env:SITE}"}
            """, environment: ["SITE": "lab", "N": "7", "DOMAIN": "example.org"])
        let host = try #require(inventory.hosts.first)
        #expect(host.name == "lab-7")
        #expect(host.address == "lab-7.example.org")
        #expect(host.labels == [Label(key: "site", value: "lab")])
    }

    @Test("$${ is a literal ${, and a lone $ stays as written")
    func escape() throws {
        let inventory = try inventory("""
            ssh: {password: "pa$$${x}$$s$", sudoPassword: "$${env:NOT_EXPANDED}"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, environment: [:])
        #expect(inventory.hosts[0].ssh.password == "pa$${x}$$s$")
        #expect(inventory.hosts[0].ssh.sudoPassword == "${env:NOT_EXPANDED}")
    }

    @Test("a missing variable is named at its value, once per reference")
    func missingVariable() {
        #expect(InventoryFixtures.problems("""
            ssh:
              keyPassphrase: ${env:KEY_PASSPHRASE}
            hosts:
              - {name: a, address: "${env:NET}.${env:HOST}", roles: [server]}
            """, environment: ["HOME": "/home/op", "NET": "10.0.0"]) == [
            "/srv/inventory.yaml:2:18: environment variable 'KEY_PASSPHRASE' is not set (in keyPassphrase)",
            "/srv/inventory.yaml:4:24: environment variable 'HOST' is not set (in address)",
        ])
    }

    @Test("other ${…} forms and an unterminated ${ are errors, not silently kept")
    func malformedReferences() {
        #expect(InventoryFixtures.problems("""
            ssh: {user: "${HOME}", password: "abc${env:X"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """) == [
            "/srv/inventory.yaml:1:13: unsupported reference '${HOME}'; use ${env:NAME} for an environment "
                + "variable, or $${ for a literal '${' (in user)",
            "/srv/inventory.yaml:1:34: unterminated '${' (write $${ for a literal '${') (in password)",
        ])
    }

    @Test("a variable that is set but empty leaves a required value empty")
    func emptyVariable() {
        #expect(InventoryFixtures.problems("""
            ssh: {user: "${env:SSH_USER}"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, environment: ["HOME": "/home/op", "SSH_USER": ""]) == [
            "/srv/inventory.yaml:1:13: user must not be empty (it expands to nothing)",
        ])
    }

    @Test("a bad value from the environment shows what it expanded from")
    func badExpandedValue() {
        #expect(InventoryFixtures.problems("""
            ssh: {port: "${env:SSH_PORT}"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, environment: ["HOME": "/home/op", "SSH_PORT": "ssh"]) == [
            "/srv/inventory.yaml:1:13: port must be an integer, got 'ssh' (from '${env:SSH_PORT}')",
        ])
    }

    @Test("every secret is listed once for redaction, and no message shows one")
    func secrets() throws {
        let environment = ["HOME": "/home/op", "PW": "hunter2", "SUDO": "s3cret"]
        let yaml = """
            ssh: {password: "${env:PW}", sudoPassword: "${env:SUDO}"}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server]}
              - {name: b, address: 10.0.0.2, roles: [agent], ssh: {sudoPassword: "${env:PW}"}}
            """
        #expect(try inventory(yaml, environment: environment).secrets == ["hunter2", "s3cret"])

        let broken = yaml + "\n  - {name: c, address: 10.0.0.3, roles: [server], ssh: {password: [x], port: x}}\n"
        let problems = InventoryFixtures.problems(broken, environment: environment).joined(separator: "\n")
        #expect(!problems.isEmpty)
        #expect(!problems.contains("hunter2") && !problems.contains("s3cret"))
    }

    @Test("the expansion rules on their own")
    func rules() {
        let environment = ["A": "1", "EMPTY": ""]
        func expand(_ text: String) -> EnvironmentExpansion.Result {
            EnvironmentExpansion.expand(text, environment: environment)
        }
        #expect(expand("x${env:A}y${env:A}").value == "x1y1")
        #expect(expand("${env:EMPTY}").value == "")
        #expect(expand("$$").value == "$$")
        #expect(expand("$${env:A}").value == "${env:A}")
        #expect(expand("${env:1A}").problems == [
            "unsupported reference '${env:1A}'; use ${env:NAME} for an environment variable, or $${ for a literal '${'",
        ])
        #expect(expand("${env:B}${env:C}").problems == [
            "environment variable 'B' is not set", "environment variable 'C' is not set",
        ])
    }
}
