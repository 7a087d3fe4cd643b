import Foundation
import LabSupport
import Testing

/// Docker beside k3s: a lab agent with the Docker look-alike (scripts/lab.d/docker), whose every start sets the
/// FORWARD policy to DROP, keeps the k3s networks accepted in DOCKER-USER across restarts and reboots.
@Suite(.serialized) struct DockerForwardTests {
    static let wanted: Set = ["-A DOCKER-USER -s 10.42.0.0/16 -j ACCEPT", "-A DOCKER-USER -d 10.42.0.0/16 -j ACCEPT",
                              "-A DOCKER-USER -s 10.43.0.0/16 -j ACCEPT", "-A DOCKER-USER -d 10.43.0.0/16 -j ACCEPT"]

    /// Installs the look-alike as docker.io would: iptables (its dependency) first, then the daemon, CLI and unit,
    /// enabled and started.
    func installDocker(_ lab: Lab, on host: String) throws {
        let apt = try lab.exec(host, "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends iptables >/dev/null 2>&1")
        #expect(apt.status == 0, "\(apt.stderr)")
        let fixture = Repo.root + "/scripts/lab.d/docker/"
        try lab.copy(fixture + "dockerd", to: host, at: "/usr/sbin/dockerd", mode: 0o755)
        try lab.copy(fixture + "docker", to: host, at: "/usr/bin/docker", mode: 0o755)
        try lab.copy(fixture + "docker.service", to: host, at: "/lib/systemd/system/docker.service")
        let started = try lab.exec(host, "systemctl enable --now docker 2>/dev/null && iptables -S FORWARD")
        #expect(started.stdout.hasPrefix("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n"), "\(started.stdout)\(started.stderr)")
    }

    /// The FORWARD policy and the ACCEPT rules of DOCKER-USER on `host`.
    func forwarding(_ lab: Lab, _ host: String) throws -> (policy: String, accepted: Set<String>) {
        let out = try lab.exec(host, "iptables -S FORWARD | head -n 1; iptables -S DOCKER-USER").stdout
        let lines = out.split(separator: "\n").map(String.init)
        return (lines.first ?? "", Set(lines.filter { $0.hasSuffix("-j ACCEPT") }))
    }

    /// Polls `forwarding` until the rules are all there (Docker starts in the background at boot).
    func awaitRules(_ lab: Lab, _ host: String) throws -> (policy: String, accepted: Set<String>) {
        var state = try forwarding(lab, host)
        for _ in 0..<50 where state.accepted != Self.wanted {
            Thread.sleep(forTimeInterval: 0.2)
            state = try forwarding(lab, host)
        }
        return state
    }

    /// host → step → (status, message) from `--output json`.
    func steps(_ output: ProcessOutput) throws -> [String: [String: (status: String, message: String)]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        var result: [String: [String: (status: String, message: String)]] = [:]
        for host in try #require(object["hosts"] as? [[String: Any]]) {
            var steps: [String: (status: String, message: String)] = [:]
            for step in host["steps"] as? [[String: Any]] ?? [] {
                steps[step["id"] as? String ?? "?"] = (step["status"] as? String ?? "", step["message"] as? String ?? "")
            }
            result[host["name"] as? String ?? "?"] = steps
        }
        return result
    }

    func changes(_ output: ProcessOutput, _ status: String) throws -> [String] {
        try steps(output).flatMap { host, steps in steps.filter { $0.value.status == status }.map { "\(host) \($0.key)" } }.sorted()
    }

    @Test func dockerOnAnAgentKeepsTheK3sNetworksAccepted() async throws {
        try await withLab(hosts: 2) { lab in
            let (path, environment) = try K3sApplyTests().inventory(lab)
            let provision = { (arguments: [String]) in try run(Repo.provisionBinary, arguments, environment: environment) }
            try installDocker(lab, on: "lab-2")
            let dockerEvents = lab.serviceEvents("lab-2").filter { $0.contains("docker.service") }

            let first = try provision(["apply", path, "--output", "json"])
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let applied = try steps(first)
            #expect(applied["lab-2"]?["k3s-docker-forward"]?.status == "changed")
            #expect(applied["lab-1"]?["k3s-docker-forward"] == nil, "no Docker on the server: the step does not apply")
            var state = try forwarding(lab, "lab-2")
            #expect(state.policy == "-P FORWARD DROP" && state.accepted == Self.wanted)
            #expect(lab.serviceEvents("lab-2").filter { $0.contains("docker.service") } == dockerEvents, "Docker was not restarted")

            // Docker's next start sets DROP again, even on a chain someone flushed: the drop-in puts the rules back.
            let restart = try lab.exec("lab-2", "iptables -F DOCKER-USER && iptables -P FORWARD ACCEPT && systemctl restart docker")
            #expect(restart.status == 0, "\(restart.stderr)")
            state = try forwarding(lab, "lab-2")
            #expect(state.policy == "-P FORWARD DROP" && state.accepted == Self.wanted)

            // A reboot starts from a network namespace without any rule; Docker starts at boot, and so do the rules.
            let reboots = lab.reboots("lab-2")
            _ = try lab.exec("lab-2", "reboot")
            try lab.waitForSSH("lab-2", afterReboots: reboots)
            state = try awaitRules(lab, "lab-2")
            #expect(state.policy == "-P FORWARD DROP" && state.accepted == Self.wanted)

            // Wait for the agent to be Ready again after its reboot; then there is nothing to change.
            var plan = try provision(["plan", path, "--detailed-exitcode", "--output", "json"])
            for _ in 0..<30 where plan.status != 0 {
                try await Task.sleep(for: .seconds(1))
                plan = try provision(["plan", path, "--detailed-exitcode", "--output", "json"])
            }
            #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")

            // One rule gone: the plan names it, on that host only, and apply puts back just that.
            _ = try lab.exec("lab-2", "iptables -D DOCKER-USER -d 10.43.0.0/16 -j ACCEPT")
            plan = try provision(["plan", path, "--detailed-exitcode", "--output", "json"])
            #expect(plan.status == 2)
            #expect(try changes(plan, "pending") == ["lab-2 k3s-docker-forward"])
            #expect(try steps(plan)["lab-2"]?["k3s-docker-forward"]?.message
                    == "FORWARD policy DROP and no ACCEPT for traffic to 10.43.0.0/16 in DOCKER-USER")
            let repair = try provision(["apply", path, "--output", "json"])
            #expect(repair.status == 0, "\(repair.stdout)\(repair.stderr)")
            #expect(try changes(repair, "changed") == ["lab-2 k3s-docker-forward"])
            #expect(try forwarding(lab, "lab-2").accepted == Self.wanted)
        }
    }
}
