import Testing
@testable import Inventory

@Suite("Inventory: the k3s block, taints and node names")
struct InventoryK3sTests {
    @Test("every k3s key is read; the token is a secret; servers keep file order")
    func everyKey() throws {
        let inventory = try InventoryFixtures.parse("""
            k3s:
              version: v1.31.4+k3s1
              token: ${env:K3S_TOKEN}
              airgap: {directory: ./k3s-assets}
              tlsSan: [k3s.lab.example, 192.168.1.10, "*.lab.example"]
              disable: [traefik, servicelb]
              writeKubeconfigMode: "0644"
              config:
                kube-apiserver-arg: [audit-log-maxage=30, "enable-admission-plugins=NodeRestriction"]
                secrets-encryption: true
                data-dir: ${env:K3S_DATA}
                etcd: {snapshot: {retention: 5}}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server], taints: ["dedicated=ci:NoSchedule", "gpu:NoExecute"]}
              - {name: a1, address: 10.0.0.4, roles: [agent], nodeName: a1.lab}
              - {name: s2, address: 10.0.0.2, roles: [server]}
              - {name: s3, address: 10.0.0.3, roles: [server]}
            """, environment: ["HOME": "/home/op", "K3S_TOKEN": "token-secret", "K3S_DATA": "/data/k3s"])
        #expect(inventory.k3s == K3sSettings(
            version: "v1.31.4+k3s1", token: "token-secret", airgapDirectory: "/srv/k3s-assets",
            tlsSan: ["k3s.lab.example", "192.168.1.10", "*.lab.example"], disable: ["traefik", "servicelb"],
            writeKubeconfigMode: "0644",
            config: [
                ConfigEntry(key: "kube-apiserver-arg",
                            value: .list(["audit-log-maxage=30", "enable-admission-plugins=NodeRestriction"])),
                ConfigEntry(key: "secrets-encryption", value: .string("true")),
                ConfigEntry(key: "data-dir", value: .string("/data/k3s")),
                ConfigEntry(key: "etcd", value: .map([
                    ConfigEntry(key: "snapshot", value: .map([ConfigEntry(key: "retention", value: .string("5"))])),
                ])),
            ]))
        #expect(inventory.k3s?.isAirgap == true)
        #expect(inventory.k3s?.config("secrets-encryption") == .string("true"))
        #expect(inventory.secrets == ["token-secret"])
        #expect(inventory.servers.map(\.name) == ["s1", "s2", "s3"])
        #expect(inventory.firstServer?.name == "s1")
        #expect(inventory.hosts.map(\.taints) == [["dedicated=ci:NoSchedule", "gpu:NoExecute"], [], [], []])
        #expect(inventory.hosts.map(\.nodeName) == ["s1", "a1.lab", "s2", "s3"])
    }

    @Test("online mode: only a version, or an install script mirror; no token means none in secrets")
    func onlineMode() throws {
        let minimal = try InventoryFixtures.parse("""
            k3s: {version: v1.31.4+k3s1}
            hosts: [{name: a, address: 10.0.0.1, roles: [runner]}]
            gitlab: {url: https://gitlab.example.com, token: glpat-x, runnerPackage: {version: 17.7.1}}
            """)
        #expect(minimal.k3s == K3sSettings(version: "v1.31.4+k3s1"))
        #expect(minimal.k3s?.isAirgap == false)
        #expect(minimal.servers.isEmpty && minimal.firstServer == nil)
        let mirror = try InventoryFixtures.parse("""
            k3s: {version: v1.32.0-rc1+k3s2, installScriptURL: "http://mirror.lan/k3s/install.sh"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """)
        #expect(mirror.k3s?.installScriptURL == "http://mirror.lan/k3s/install.sh")
        #expect(mirror.k3s?.token == nil)
        #expect(mirror.secrets.isEmpty)
        #expect(mirror.hosts[0].nodeName == "a" && mirror.hosts[0].taints.isEmpty)
    }

    @Test("every problem in the k3s block and in taints and node names, each at its key or value")
    func problems() {
        #expect(InventoryFixtures.problems("""
            k3s:
              version: v1.31+k3s1
              airgap: {directory: ./assets}
              installScriptURL: https://mirror.lan/k3s
              tlsSan: [ok.lab, "bad name"]
              disable: [traefik, treafik]
              writeKubeconfigMode: 644x
              config: {tls-san: [x], node-label+: [a=b], kubelet-arg: [max-pods=200], bad: [{a: b}]}
              tokn: x
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server], taints: [NoSchedule, "x=y:NoSchedul", "Bad_/k:NoExecute"]}
              - {name: b, address: 10.0.0.2, roles: [server], nodeName: a}
              - {name: c, address: 10.0.0.3, roles: [agent], nodeName: C_1, tains: []}
            """) == [
            "/srv/inventory.yaml:2:12: k3s version must look like 'v1.31.4+k3s1', got 'v1.31+k3s1'",
            "/srv/inventory.yaml:4:3: airgap and installScriptURL cannot both be set: airgap installs from the local "
                + "folder without downloading anything; remove one (the other is at line 3)",
            "/srv/inventory.yaml:5:20: tlsSan entry 'bad name' is not an IP address or a DNS name",
            "/srv/inventory.yaml:6:22: disable: unknown component 'treafik'; expected 'coredns', 'servicelb', "
                + "'traefik', 'local-storage', 'metrics-server' or 'runtimes'; did you mean 'traefik'?",
            "/srv/inventory.yaml:7:24: writeKubeconfigMode must be 3 or 4 octal digits such as \"0644\", got '644x'",
            "/srv/inventory.yaml:8:12: config key 'tls-san' is set by provision itself; "
                + "use the k3s block's 'tlsSan' instead",
            "/srv/inventory.yaml:8:26: config key 'node-label+' is set by provision itself; use a host's 'labels' "
                + "instead",
            "/srv/inventory.yaml:8:81: an item of config.bad must be a string, got a mapping",
            "/srv/inventory.yaml:9:3: unknown key 'tokn' in k3s; did you mean 'token'?",
            "/srv/inventory.yaml:10:1: hosts has 2 servers, but embedded etcd needs a majority of servers up, and 2 "
                + "servers tolerate no more failures than 1; use 1 server or an odd number of 3 or more",
            "/srv/inventory.yaml:11:60: taint 'NoSchedule' must be key[=value]:Effect, such as "
                + "'dedicated=ci:NoSchedule'",
            "/srv/inventory.yaml:11:72: taint 'x=y:NoSchedul' has the effect 'NoSchedul'; expected 'NoSchedule', "
                + "'PreferNoSchedule' or 'NoExecute'; did you mean 'NoSchedule'?",
            "/srv/inventory.yaml:11:89: taint 'Bad_/k:NoExecute' has an invalid key 'Bad_/k': use an optional DNS "
                + "prefix and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
                + "letter or digit",
            "/srv/inventory.yaml:12:61: duplicate node name 'a'; host 'a' at line 11 already uses it "
                + "(set nodeName to tell them apart)",
            "/srv/inventory.yaml:13:60: nodeName 'C_1' is invalid: use at most 63 lowercase letters, digits, '-' "
                + "and '.', starting and ending with a letter or digit",
            "/srv/inventory.yaml:13:65: unknown key 'tains' in host; did you mean 'taints'?",
        ])
    }

    @Test("roles without a k3s block are allowed: k3s is installed only when the block says how")
    func k3sRoleWithoutBlock() throws {
        let inventory = try InventoryFixtures.parse("""
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server]}
              - {name: b, address: 10.0.0.2, roles: [runner, agent]}
            gitlab: {url: https://gitlab.example.com, token: glpat-x, runnerPackage: {version: 17.7.1}}
            """)
        #expect(inventory.k3s == nil)
        #expect(inventory.firstServer?.name == "a")
    }

    @Test("embedded etcd: 1 server or an odd number of 3 or more", arguments: 1...6)
    func serverCount(count: Int) {
        let hosts = (1...count).map { "  - {name: s\($0), address: 10.0.0.\($0), roles: [server]}" }
        let yaml = "k3s: {version: v1.31.4+k3s1}\nhosts:\n" + hosts.joined(separator: "\n") + "\n"
        if count == 1 || !count.isMultiple(of: 2) {
            #expect((try? InventoryFixtures.parse(yaml))?.servers.count == count)
        } else {
            #expect(InventoryFixtures.problems(yaml) == [
                "/srv/inventory.yaml:2:1: hosts has \(count) servers, but embedded etcd needs a majority of servers "
                    + "up, and \(count) servers tolerate no more failures than \(count - 1); use 1 server or an odd "
                    + "number of 3 or more",
            ])
        }
    }

    @Test("config keys the tool writes itself name the inventory setting to use instead",
          arguments: K3sSettings.ownedConfigKeys.keys.sorted())
    func ownedConfigKey(key: String) throws {
        let owner = try #require(K3sSettings.ownedConfigKeys[key])
        #expect(InventoryFixtures.problems("""
            k3s:
              version: v1.31.4+k3s1
              config: {\(key): x}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """) == [
            "/srv/inventory.yaml:3:12: config key '\(key)' is set by provision itself; use \(owner) instead",
        ])
    }

    @Test("shapes: lists, the airgap mapping, the URL scheme, an empty token, nulls in config")
    func shapes() {
        #expect(InventoryFixtures.problems("""
            k3s:
              version: v1.31.4+k3s1
              token: ""
              airgap: {directroy: ./assets}
              tlsSan: k3s.lab.example
              disable: traefik
              installScriptURL: ftp://get.k3s.io
              config: {empty: , list: [a, [b]]}
            hosts:
              - {name: a, address: 10.0.0.1, roles: [server], taints: "gpu:NoSchedule"}
              - {name: b, address: 10.0.0.2, roles: [agent], taints: ["gpu=a:NoSchedule", "gpu=b:NoSchedule"]}
            """) == [
            "/srv/inventory.yaml:3:10: token must not be empty",
            "/srv/inventory.yaml:4:11: airgap is missing required key 'directory'",
            "/srv/inventory.yaml:4:12: unknown key 'directroy' in airgap; did you mean 'directory'?",
            "/srv/inventory.yaml:5:11: tlsSan must be a list such as [k3s.lab.example, 192.168.1.10], "
                + "got 'k3s.lab.example'",
            "/srv/inventory.yaml:6:12: disable must be a list such as [traefik, servicelb], got 'traefik'",
            "/srv/inventory.yaml:7:3: airgap and installScriptURL cannot both be set: airgap installs from the local "
                + "folder without downloading anything; remove one (the other is at line 4)",
            "/srv/inventory.yaml:7:21: installScriptURL must be an https:// or http:// URL such as "
                + "'https://get.k3s.io', got 'ftp://get.k3s.io'",
            "/srv/inventory.yaml:8:12: config.empty must be a string, a list of strings or a mapping, got nothing",
            "/srv/inventory.yaml:8:31: an item of config.list must be a string, got a list",
            "/srv/inventory.yaml:10:59: taints must be a list such as [\"dedicated=ci:NoSchedule\"], "
                + "got 'gpu:NoSchedule'",
            "/srv/inventory.yaml:11:79: taint 'gpu=b:NoSchedule' repeats the key and effect of the taint at "
                + "line 11, column 59",
        ])
    }

    @Test("the token is never shown in a diagnostic")
    func tokenNotShown() {
        let problems = InventoryFixtures.problems("""
            k3s: {version: v1, token: "${env:K3S_TOKEN}"}
            hosts: [{name: a, address: 10.0.0.1, roles: [server]}]
            """, environment: ["HOME": "/home/op", "K3S_TOKEN": "token-secret"])
        #expect(problems.count == 1)
        #expect(!problems.joined().contains("token-secret"))
    }
}
