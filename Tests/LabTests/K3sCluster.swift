import Foundation
import LabSupport
import Testing

/// A k3s cluster made by `provision apply` on lab hosts (the k3s stand-in, airgap): the lab's inventory with a k3s
/// block, lab-1 the server and the others agents.
struct K3sCluster {
    static let token = "K3sLabToken-\(UUID().uuidString.prefix(8))"
    let lab: Lab
    let inventory: String
    let environment: [String: String]

    init(_ lab: Lab, version: String = "v1.31.4+k3s1") throws {
        self.lab = lab
        let bundle = lab.directory + "/bundle-" + version
        let made = try run(Repo.root + "/scripts/lab.d/k3s/make-bundle", [bundle, version])
        #expect(made.status == 0, "\(made.stderr)")
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\nhosts:\n", with: """

            k3s: {version: \(version), token: "${env:LAB_K3S_TOKEN}", airgap: {directory: \(bundle)}}
            hosts:

            """)
        inventory = lab.directory + "/k3s.yaml"
        try text.write(toFile: inventory, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["LAB_K3S_TOKEN"] = Self.token
        self.environment = environment
    }

    /// `provision ARGUMENTS` with the inventory's environment; stdin is a file, so never a terminal.
    func provision(_ arguments: [String], stdin: String? = nil) throws -> ProcessOutput {
        try run(Repo.provisionBinary, arguments, stdin: stdin, environment: environment)
    }

    func apply() throws {
        let result = try provision(["apply", inventory])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    }

    /// Puts a `gitlab:` block for the lab's fake GitLab (url, the project-bot token from the environment, then
    /// `settings`, lines indented by two) and the `blocks` before it ahead of `hosts:` in the inventory; returns the
    /// environment that token comes from.
    func addGitLab(_ settings: String, blocks: String = "") throws -> [String: String] {
        var text = try String(contentsOfFile: inventory, encoding: .utf8)
        text = text.replacingOccurrences(of: "\nhosts:\n", with: "\n" + blocks + """
            gitlab:
              url: \(lab.gitlabURL)
              token: "${env:LAB_GITLAB_TOKEN}"

            """ + settings + "hosts:\n")
        try text.write(toFile: inventory, atomically: true, encoding: .utf8)
        var environment = self.environment
        environment["LAB_GITLAB_TOKEN"] = try lab.gitlabToken("project-bot")
        return environment
    }

    /// node name → status of its Ready condition, as kubectl on the server lists them.
    func nodes() throws -> [String: String] {
        let out = try lab.exec("lab-1", "k3s kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}'")
        var result: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=")
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    /// Which of k3s's binary, units and folders `host` has.
    func k3sFiles(on host: String) throws -> [String] {
        let paths = ["/usr/local/bin/k3s", "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service",
                     "/etc/rancher/k3s", "/var/lib/rancher/k3s", "/usr/local/share/provision/k3s-install.sh"]
        let out = try lab.exec(host, "for f in \(paths.joined(separator: " ")); do [ ! -e $f ] || echo $f; done")
        return out.stdout.split(separator: "\n").map(String.init)
    }
}
