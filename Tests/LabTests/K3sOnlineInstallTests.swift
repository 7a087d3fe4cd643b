import Foundation
import LabSupport
import ProvisionBasics
import Testing

/// provision apply installs k3s online: each host downloads the install script from the inventory's URL (here the
/// lab's mirror, as an admin's mirror of get.k3s.io) and the script downloads the pinned release.
@Suite(.serialized) struct K3sOnlineInstallTests {
    static let token = "K3sOnlineToken-\(UUID().uuidString.prefix(8))"
    static let installScript = "/usr/local/share/provision/k3s-install.sh"

    /// The lab's inventory with an online k3s block: `version` from `url`, the token from the environment.
    func inventory(_ lab: Lab, url: String, version: String = "v1.31.4+k3s1") throws -> (String, [String: String]) {
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\nhosts:\n", with: """

            k3s: {version: \(version), token: "${env:LAB_K3S_TOKEN}", installScriptURL: "\(url)"}
            hosts:

            """)
        let path = lab.directory + "/k3s-online.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["LAB_K3S_TOKEN"] = Self.token
        return (path, environment)
    }

    /// host → step id → (status, message), from `apply --output json`.
    func steps(_ json: String) throws -> [String: [String: (status: String, message: String)]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        var result: [String: [String: (status: String, message: String)]] = [:]
        for host in object["hosts"] as? [[String: Any]] ?? [] {
            let name = host["name"] as? String ?? "?"
            for step in host["steps"] as? [[String: Any]] ?? [] {
                result[name, default: [:]][step["id"] as? String ?? "?"] =
                    (step["status"] as? String ?? "?", step["message"] as? String ?? "")
            }
        }
        return result
    }

    /// node name → "<Ready status> <kubelet version>", from the first server.
    func nodes(_ lab: Lab) throws -> [String: String] {
        let out = try lab.exec("lab-1", "k3s kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {.status.nodeInfo.kubeletVersion}{\"\\n\"}{end}'")
        var result: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    @Test func aServerAndAnAgentInstallThePinnedVersionFromTheMirrorOnceAndStayPut() async throws {
        try await withLab(hosts: 2) { lab in
            // The mirror's stable channel names v1.32.5: only the pin can make it v1.31.4.
            try lab.mirrorK3s(["v1.31.4+k3s1", "v1.32.5+k3s1"])
            let url = lab.k3sMirrorURL + "/install.sh"
            let (path, environment) = try inventory(lab, url: url)
            let first = try run(Repo.provisionBinary, ["apply", path, "--output", "json"], environment: environment)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let outcome = try steps(first.stdout)
            for host in lab.hosts {
                let step = outcome[host.name]?["k3s-install-script"]
                #expect(step?.status == "changed" && step?.message.hasSuffix("now \(Self.installScript) downloaded from \(url)") == true,
                        "\(host.name): \(String(describing: step))")
            }
            #expect(try nodes(lab) == ["lab-1": "True v1.31.4+k3s1", "lab-2": "True v1.31.4+k3s1"])

            // Each host has the mirror's script, knows where it came from, and runs the pinned binary.
            let script = try String(contentsOfFile: lab.directory + "/mirror/k3s/install.sh", encoding: .utf8)
            for host in lab.hosts {
                #expect(try lab.exec(host.name, "cat \(Self.installScript)").stdout == script)
                #expect(try lab.exec(host.name, "stat -c %a \(Self.installScript); cat \(Self.installScript).url").stdout == "755\n\(url)\n")
                #expect(try lab.exec(host.name, "k3s --version").stdout.hasPrefix("k3s version v1.31.4+k3s1 ("))
                let fetched = lab.servicesLog.filter { $0.hasPrefix(host.address + " \"GET ") }
                #expect(fetched.contains { $0.contains("GET /k3s/install.sh ") && $0.hasSuffix(" 200 -") })
                #expect(fetched.contains { $0.contains("GET /k3s/releases/download/v1.31.4+k3s1/k3s ") && $0.hasSuffix(" 200 -") })
                #expect(!fetched.contains { $0.contains("v1.32.5") }, "\(fetched)")
            }
            #expect(!first.stdout.contains(Self.token) && !first.stderr.contains(Self.token))

            // Again: nothing changes, nothing restarts, nothing is downloaded.
            let events = lab.hosts.map { lab.serviceEvents($0.name) }
            let requests = lab.servicesLog.count
            let second = try run(Repo.provisionBinary, ["apply", path, "--output", "json"], environment: environment)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(!second.stdout.contains("\"changed\""), "\(second.stdout)")
            #expect(lab.hosts.map { lab.serviceEvents($0.name) } == events)
            #expect(lab.servicesLog.count == requests, "\(lab.servicesLog.suffix(5))")
        }
    }

    @Test func aMirrorURLThatAnswers404FailsTheInstallScriptStepOnEachHostNamingTheURL() async throws {
        try await withLab(hosts: 2) { lab in
            let url = lab.k3sMirrorURL + "/no-such-mirror/install.sh"
            let (path, environment) = try inventory(lab, url: url)
            let result = try run(Repo.provisionBinary, ["apply", path, "--output", "json"], environment: environment)
            #expect(result.status != 0)
            let outcome = try steps(result.stdout)
            for host in lab.hosts {
                let step = outcome[host.name]?["k3s-install-script"]
                #expect(step?.status == "failed", "\(host.name): \(String(describing: step))")
                #expect(step?.message.hasSuffix("cannot download the k3s install script from \(url): "
                                                 + "curl: (22) The requested URL returned error: 404") == true,
                        "\(host.name): \(step?.message ?? "no k3s-install-script step")")
                #expect(outcome[host.name]?["k3s-service"]?.status == "skipped")
                let left = try lab.exec(host.name, "ls -A /usr/local/share/provision 2>/dev/null | wc -l")
                #expect(left.stdout == "0\n", "no script and no partial download on \(host.name)")
            }
        }
    }
}
