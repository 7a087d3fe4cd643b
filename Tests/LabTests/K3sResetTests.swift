import Foundation
import LabSupport
import ProvisionBasics
import Testing

/// `provision reset` takes k3s off hosts, in the reverse order of the install, and only when someone confirmed.
@Suite(.serialized) struct K3sResetTests {
    @Test func anAgentLeavesTheClusterAndOnlyAfterConfirmation() async throws {
        try await withLab(hosts: 3) { lab in
            let cluster = try K3sCluster(lab)
            try cluster.apply()
            let all = ["lab-1": "True", "lab-2": "True", "lab-3": "True"]
            #expect(try cluster.nodes() == all)
            let installed = try cluster.k3sFiles(on: "lab-2")
            #expect(installed.contains("/usr/local/bin/k3s") && installed.contains("/etc/systemd/system/k3s-agent.service"))
            let events = lab.hosts.map { lab.serviceEvents($0.name) }
            func unchanged(_ what: String) throws {
                #expect(try cluster.nodes() == all, "\(what)")
                #expect(try cluster.k3sFiles(on: "lab-2") == installed, "\(what)")
                #expect(lab.hosts.map { lab.serviceEvents($0.name) } == events, "\(what)")
            }

            // No terminal and no --yes: nobody confirmed, so nothing happens (not even an SSH login).
            let logins = lab.sshdLog("lab-2").components(separatedBy: "Accepted publickey").count
            let unconfirmed = try cluster.provision(["reset", cluster.inventory, "--host", "lab-2"], stdin: "yes\n")
            #expect(unconfirmed.status == 1)
            #expect(unconfirmed.stderr.contains("stdin is not a terminal; add --yes"), "\(unconfirmed.stderr)")
            #expect(unconfirmed.stdout.isEmpty)
            #expect(lab.sshdLog("lab-2").components(separatedBy: "Accepted publickey").count == logins)
            try unchanged("without confirmation")

            // The first server alone would strand the agents.
            let first = try cluster.provision(["reset", cluster.inventory, "--host", "lab-1", "--yes"])
            #expect(first.status == 1)
            #expect(first.stderr.contains("lab-1 is the first server, and lab-2, lab-3 join its cluster"), "\(first.stderr)")
            #expect(first.stderr.contains("--host lab-2 --host lab-3"))
            try unchanged("first server alone")

            // On a terminal, anything but "yes" aborts.
            let command = ShellQuote.join([Repo.provisionBinary, "reset", cluster.inventory, "--host", "lab-2"])
            let declined = try run("script", ["-qec", command, "/dev/null"], stdin: "no\n", environment: cluster.environment)
            #expect(declined.status == 1)
            #expect(declined.stdout.contains("lab-2 (agent): drain node lab-2 and delete it from the cluster (on lab-1)"))
            #expect(declined.stdout.contains("Type 'yes' to remove k3s from 1 host(s): "), "\(declined.stdout)")
            #expect(declined.stdout.contains("aborted: nothing was changed"))
            try unchanged("declined")

            let reset = try cluster.provision(["reset", cluster.inventory, "--host", "lab-2", "--yes"])
            #expect(reset.status == 0, "\(reset.stdout)\(reset.stderr)")
            #expect(reset.stdout.contains("lab-2: drained node lab-2 (on lab-1): "), "\(reset.stdout)")
            for line in ["lab-2: deleted node lab-2 from the cluster (on lab-1)",
                         "lab-2: ran /usr/local/bin/k3s-agent-uninstall.sh", "lab-2: k3s removed",
                         "k3s removed from 1 of 1 host(s)"] {
                #expect(reset.stdout.contains(line + "\n"), "\(reset.stdout)")
            }
            #expect(try cluster.nodes() == ["lab-1": "True", "lab-3": "True"])
            #expect(try cluster.k3sFiles(on: "lab-2") == [])
            #expect(try lab.exec("lab-2", "pgrep -f 'k3s (agent|server)'").stdout.isEmpty)
            #expect(lab.serviceEvents("lab-1") == events[0] && lab.serviceEvents("lab-3") == events[2])

            // The journal no longer speaks for lab-2; the next apply would install it again, and only it.
            let status = try cluster.provision(["status", cluster.inventory, "--output", "json"])
            let hosts = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])["hosts"] as? [[String: Any]]
            #expect(hosts?.compactMap { $0["name"] as? String } == ["lab-1", "lab-3"])
            let plan = try cluster.provision(["plan", cluster.inventory, "--output", "json"])
            #expect(plan.status == 0, "\(plan.stderr)")
            let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])["hosts"] as? [[String: Any]]
            var pending: [String: [String]] = [:]
            var reasons: [String: String] = [:]
            for host in planned ?? [] {
                let name = host["name"] as? String ?? "?"
                for step in host["steps"] as? [[String: Any]] ?? [] where step["status"] as? String == "pending" {
                    pending[name, default: []].append(step["id"] as? String ?? "?")
                    reasons[name + " " + (step["id"] as? String ?? "?")] = step["message"] as? String
                }
            }
            #expect(pending["lab-2"] == ["k3s-assets", "k3s-config", "k3s-service"], "\(pending)")
            #expect(pending["lab-3"] == nil)
            // The first server's cluster check waits for lab-2's node: the only thing pending there.
            #expect(pending["lab-1"] == ["k3s-ready"])
            #expect(reasons["lab-1 k3s-ready"] == "node lab-2 is not registered")
        }
    }
}
