import Testing
@testable import Inventory

@Suite("Inventory: diagnostics a user sees")
struct InventoryDiagnosticsTests {
    @Test("a broken inventory reports every problem at once, in file order")
    func everyProblemAtOnce() throws {
        let path = try InventoryFixtures.path("broken.yaml")
        #expect(InventoryFixtures.problems(file: path) == [
            "\(path):3:3: unknown key 'usr' in ssh; did you mean 'user'?",
            "\(path):4:9: port must be an integer, got 'abc'",
            "\(path):5:3: hostKeyFingerprint is only allowed in a host's ssh block, since each host has its own key",
            "\(path):7:12: k3s version must look like 'v1.31.4+k3s1', got '1.31'",
            "\(path):9:5: host is missing required key 'address'",
            "\(path):10:5: unknown key 'adress' in host; did you mean 'address'?",
            "\(path):12:11: duplicate host name 'pi-1'; first defined at line 9",
            "\(path):14:20: unknown role 'master'; expected 'server', 'agent' or 'runner'; did you mean 'server'?",
            "\(path):15:21: environment variable 'PI_PASSWORD' is not set (in password)",
        ])
    }

    @Test("InventoryError prints one file:line:column diagnostic per line")
    func errorDescription() {
        let error = InventoryError(diagnostics: [
            Diagnostic(location: SourceLocation(file: "inv.yaml", line: 3, column: 5), message: "first"),
            Diagnostic(location: SourceLocation(file: "inv.yaml", line: 0, column: 0), message: "whole file"),
        ])
        #expect(error.description == "inv.yaml:3:5: first\ninv.yaml: whole file")
    }

    // MARK: Malformed YAML

    @Test("a tab in the indentation is a YAML error at the tab")
    func tabIndentation() throws {
        let path = try InventoryFixtures.path("tab-indent.yaml")
        #expect(InventoryFixtures.problems(file: path) == [
            "\(path):3:1: invalid YAML: found a tab character that violates indentation; "
                + "indent with spaces, YAML does not allow tabs there",
        ])
        #expect(InventoryFixtures.problems("hosts:\n\t- name: a\n") == [
            "/srv/inventory.yaml:2:1: invalid YAML: found character that cannot start any token; "
                + "indent with spaces, YAML does not allow tabs there",
        ])
    }

    @Test("an unclosed flow mapping or list points where the parser gave up and where it opened")
    func unclosedFlow() throws {
        let path = try InventoryFixtures.path("unclosed-flow.yaml")
        #expect(InventoryFixtures.problems(file: path) == [
            "\(path):2:6: invalid YAML: did not find expected ',' or '}' "
                + "(while parsing a flow mapping at line 1, column 6); is a closing '}' missing?",
        ])
        #expect(InventoryFixtures.problems("hosts:\n  - {name: a, address: b, roles: [server}\n") == [
            "/srv/inventory.yaml:2:41: invalid YAML: did not find expected ',' or ']' "
                + "(while parsing a flow sequence at line 2, column 34); is a closing ']' missing?",
        ])
    }

    @Test("other YAML errors: a second document, an undefined alias, an empty file")
    func otherYAMLErrors() {
        #expect(InventoryFixtures.problems("hosts: []\n---\nhosts: []\n") == [
            "/srv/inventory.yaml:2:1: the inventory must be a single YAML document, but a second one starts here",
        ])
        #expect(InventoryFixtures.problems("ssh: *defaults\n") == [
            "/srv/inventory.yaml:1:6: invalid YAML: found undefined alias",
        ])
        #expect(InventoryFixtures.problems("# nothing yet\n") == [
            "/srv/inventory.yaml:1:1: the inventory is empty; it needs at least a 'hosts' list",
        ])
    }

    @Test("positions count characters, not bytes, and CRLF ends a line once")
    func positions() {
        #expect(InventoryFixtures.problems("ssh: {user: \"jörg\", ä: 1, ä: 2}\r\nhosts: []\r\n") == [
            "/srv/inventory.yaml:1:21: unknown key 'ä' in ssh",
            "/srv/inventory.yaml:1:27: duplicate key 'ä' in ssh; first at line 1, column 21",
            "/srv/inventory.yaml:2:1: hosts must list at least one host",
        ])
    }

    @Test("a problem in an anchored block used by several hosts is reported once, where it is written")
    func anchoredBlockReportedOnce() {
        #expect(InventoryFixtures.problems("""
            x-ssh: &pi {port: twenty-two}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server], ssh: *pi}
              - {name: b, address: 10.0.0.2, roles: [agent], ssh: *pi}
            k3s: {version: v1.31.4+k3s1}
            """) == ["/srv/inventory.yaml:1:19: port must be an integer, got 'twenty-two'"])
    }

    @Test("a YAML error after a duplicate key is still found")
    func syntaxErrorAfterDuplicate() {
        #expect(InventoryFixtures.problems("ssh:\n  user: a\n  user: b\nhosts: [\n") == [
            "/srv/inventory.yaml:5:1: invalid YAML: did not find expected node content "
                + "(while parsing a flow node)",
        ])
    }

    // MARK: Keys

    @Test("duplicate keys in one mapping are reported at each later occurrence")
    func duplicateKeys() throws {
        let path = try InventoryFixtures.path("duplicate-keys.yaml")
        #expect(InventoryFixtures.problems(file: path) == [
            "\(path):4:3: duplicate key 'user' in ssh; first at line 2",
            "\(path):9:5: duplicate key 'address' in host; first at line 7",
            "\(path):10:25: duplicate key 'disk' in labels; first at line 10, column 14",
        ])
    }

    @Test("duplicate keys however written: quoted, anchored, three times, next to other problems")
    func duplicateKeysHoweverWritten() {
        #expect(InventoryFixtures.problems("""
            ssh:
              "port": 22
              &p port: 23
              port: 24
              bogus: 1
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """) == [
            "/srv/inventory.yaml:3:3: duplicate key 'port' in ssh; first at line 2",
            "/srv/inventory.yaml:4:3: duplicate key 'port' in ssh; first at line 2",
            "/srv/inventory.yaml:5:3: unknown key 'bogus' in ssh",
        ])
    }

    @Test("unknown keys suggest the nearest valid key only when it is close",
          arguments: [("adress", "; did you mean 'address'?"), ("Address", "; did you mean 'address'?"),
                      ("hostname", "; did you mean 'address'?"), ("rols", "; did you mean 'roles'?"),
                      ("colour", "")])
    func unknownKey(key: String, hint: String) {
        #expect(InventoryFixtures.problems("""
            hosts:
              - name: a
                address: 10.0.0.1
                roles: [server]
                \(key): x
            """) == ["/srv/inventory.yaml:5:5: unknown key '\(key)' in host\(hint)"])
    }

    @Test("top-level keys: unknown ones are errors, x- ones are free for anchors, << is explained")
    func topLevelKeys() throws {
        #expect(InventoryFixtures.problems("""
            sshh: {user: pi}
            hosts:
              - {<<: {user: pi}, name: a, address: 10.0.0.1, roles: [server]}
            """) == [
            "/srv/inventory.yaml:1:1: unknown key 'sshh' at the top level; did you mean 'ssh'?",
            "/srv/inventory.yaml:3:6: merge keys ('<<') are not supported; "
                + "put shared ssh settings in the top-level ssh block",
        ])
        let inventory = try InventoryFixtures.parse("""
            x-pi: &pi {name: pi, address: 10.0.0.1, roles: [agent]}
            hosts: [{name: s, address: 10.0.0.2, roles: [server]}, *pi]
            k3s: {version: v1.31.4+k3s1}
            """)
        #expect(inventory.hosts.map(\.name) == ["s", "pi"])
    }

    @Test("missing required keys are reported at the mapping that lacks them")
    func missingKeys() {
        #expect(InventoryFixtures.problems("ssh: {user: pi}\n") == [
            "/srv/inventory.yaml:1:1: the inventory is missing required key 'hosts'",
        ])
        #expect(InventoryFixtures.problems("""
            k3s: {}
            hosts:
              - {name: a}
              - address: 10.0.0.2
                roles: [server]
            """) == [
            "/srv/inventory.yaml:1:6: k3s is missing required key 'version'",
            "/srv/inventory.yaml:3:5: host is missing required key 'address'",
            "/srv/inventory.yaml:3:5: host is missing required key 'roles'",
            "/srv/inventory.yaml:4:5: host is missing required key 'name'",
        ])
    }

    // MARK: Types

    @Test("a value of the wrong kind names what was expected and what was found")
    func wrongKinds() {
        #expect(InventoryFixtures.problems("""
            ssh: [user, pi]
            k3s: v1.31.4+k3s1
            hosts:
              - {name: [a], address: 10.0.0.1, roles: server, labels: [disk]}
              - just-a-name
            """) == [
            "/srv/inventory.yaml:1:6: ssh must be a mapping, got a list",
            "/srv/inventory.yaml:2:6: k3s must be a mapping, got 'v1.31.4+k3s1'",
            "/srv/inventory.yaml:4:12: name must be a string, got a list",
            "/srv/inventory.yaml:4:43: roles must be a list such as [server], got 'server'",
            "/srv/inventory.yaml:4:59: labels must be a mapping, got a list",
            "/srv/inventory.yaml:5:5: each host must be a mapping, got 'just-a-name'",
        ])
        #expect(InventoryFixtures.problems("hosts: {a: 1}\n") == [
            "/srv/inventory.yaml:1:8: hosts must be a list of hosts, got a mapping",
        ])
        #expect(InventoryFixtures.problems("hosts: []\n") == [
            "/srv/inventory.yaml:1:1: hosts must list at least one host",
        ])
    }

    // MARK: Hosts

    @Test("duplicate names and addresses point at the second and name the first")
    func duplicateHosts() {
        #expect(InventoryFixtures.problems("""
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server]}
              - {name: b, address: Node-B.lan, roles: [agent]}
              - {name: a, address: 10.0.0.1, roles: [agent]}
              - {name: d, address: node-b.lan., roles: [agent]}
              - {name: e, address: "fd00::20", roles: [server]}
              - {name: f, address: "fd00:0:0::20", roles: [server]}
            k3s: {version: v1.31.4+k3s1}
            """) == [
            "/srv/inventory.yaml:4:12: duplicate host name 'a'; first defined at line 2",
            "/srv/inventory.yaml:4:24: duplicate address '10.0.0.1' (port 22); host 'a' at line 2 already uses it",
            "/srv/inventory.yaml:5:24: duplicate address 'node-b.lan.' (port 22); host 'b' at line 3 already uses it",
            "/srv/inventory.yaml:7:24: duplicate address 'fd00:0:0::20' (port 22); host 'e' at line 6 "
                + "already uses it",
        ])
    }

    @Test("one address on different ports is several hosts (NAT, containers)")
    func sameAddressOtherPort() throws {
        let inventory = try InventoryFixtures.parse("""
            hosts:
              - {name: a, address: 127.0.0.1, roles: [server], ssh: {port: 2201}}
              - {name: b, address: 127.0.0.1, roles: [agent], ssh: {port: 2202}}
            k3s: {version: v1.31.4+k3s1}
            """)
        #expect(inventory.hosts.map(\.ssh.port) == [2201, 2202])
    }

    @Test("roles: known names, each once, never server and agent together")
    func roles() {
        #expect(InventoryFixtures.problems("""
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server, agent]}
              - {name: b, address: 10.0.0.2, roles: [runner, runner, srever]}
              - {name: c, address: 10.0.0.3, roles: []}
            """) == [
            "/srv/inventory.yaml:2:41: a host cannot be both server and agent: a k3s server already runs the agent",
            "/srv/inventory.yaml:3:50: role 'runner' is listed twice",
            "/srv/inventory.yaml:3:58: unknown role 'srever'; expected 'server', 'agent' or 'runner'; "
                + "did you mean 'server'?",
            "/srv/inventory.yaml:4:41: roles must list at least one of 'server', 'agent' or 'runner'",
        ])
    }

    @Test("agents without a server are reported at the hosts key")
    func agentsWithoutServer() {
        #expect(InventoryFixtures.problems("""
            k3s: {version: v1.31.4+k3s1}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [agent]}
              - {name: b, address: 10.0.0.2, roles: [agent]}
            """) == [
            "/srv/inventory.yaml:2:1: hosts has agents but no server: agents join a k3s server, "
                + "so give one host the role 'server'",
        ])
    }

    @Test("host names are DNS labels; addresses are IPs or host names without user or port")
    func namesAndAddresses() {
        #expect(InventoryFixtures.problems("""
            hosts:
              - {name: Pi_1, address: pi@10.0.0.1, roles: [server]}
              - {name: -b, address: "10.0.0.2:2222", roles: [server]}
              - {name: c, address: 10.0.0.300, roles: [server]}
              - {name: d, address: "[fd00::1]", roles: [server]}
              - {name: e, address: bad_host.lan, roles: [server]}
            """) == [
            "/srv/inventory.yaml:2:12: host name 'Pi_1' is invalid: use at most 63 lowercase letters, digits, "
                + "'-' and '.', starting and ending with a letter or digit",
            "/srv/inventory.yaml:2:27: address 'pi@10.0.0.1' must not include a user; write address: 10.0.0.1 "
                + "and ssh: {user: pi}",
            "/srv/inventory.yaml:3:12: host name '-b' is invalid: use at most 63 lowercase letters, digits, "
                + "'-' and '.', starting and ending with a letter or digit",
            "/srv/inventory.yaml:3:25: address '10.0.0.2:2222' must not include a port; write address: 10.0.0.2 "
                + "and ssh: {port: 2222}",
            "/srv/inventory.yaml:4:24: address '10.0.0.300' is not a valid IPv4 address",
            "/srv/inventory.yaml:5:24: address '[fd00::1]' must be written without brackets (and without a port)",
            "/srv/inventory.yaml:6:24: address 'bad_host.lan' is not a valid IPv4 address, IPv6 address or "
                + "host name",
        ])
    }

    @Test("labels keep their order; keys and values follow Kubernetes label syntax")
    func labels() throws {
        let inventory = try InventoryFixtures.parse("""
            hosts:
              - name: a
                address: 10.0.0.1
                roles: [server]
                labels: {zone: b, example.com/tier: "1", gpu: true, empty: }
            """)
        #expect(inventory.hosts[0].labels == [
            Label(key: "zone", value: "b"), Label(key: "example.com/tier", value: "1"),
            Label(key: "gpu", value: "true"), Label(key: "empty", value: ""),
        ])
        #expect(InventoryFixtures.problems("""
            hosts:
              - name: a
                address: 10.0.0.1
                roles: [server]
                labels: {Bad/key: x, ok: "not ok", nested: {a: b}}
            """) == [
            "/srv/inventory.yaml:5:14: label key 'Bad/key' is invalid: use an optional DNS prefix and '/', then "
                + "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            "/srv/inventory.yaml:5:30: value 'not ok' of label 'ok' is invalid: use at most 63 letters, digits, "
                + "'-', '_' and '.', starting and ending with a letter or digit",
            "/srv/inventory.yaml:5:48: label 'nested' must be a string, got a mapping",
        ])
    }

    // MARK: Files

    @Test("a file that cannot be read is one diagnostic without a position")
    func unreadableFile() throws {
        #expect(InventoryFixtures.problems(file: "/nonexistent/inventory.yaml") == [
            "/nonexistent/inventory.yaml: cannot read the inventory: no such file",
        ])
        let folder = try InventoryFixtures.path("")
        #expect(InventoryFixtures.problems(file: folder) == [
            "\(folder): cannot read the inventory: it is a directory, not a YAML file",
        ])
    }

    @Test("suggestions: close words only, transpositions count once")
    func suggestions() {
        #expect(Suggestion.editDistance("prot", "port") == 1)
        #expect(Suggestion.editDistance("adress", "address") == 1)
        #expect(Suggestion.closest(to: "prot", among: SSHBlock.keys) == "port")
        #expect(Suggestion.closest(to: "KNOWN_HOSTS", among: SSHBlock.keys) == "knownHosts")
        #expect(Suggestion.closest(to: "xyz", among: SSHBlock.keys) == nil)
    }
}
