import Foundation
import Testing
@testable import Engine
import Inventory
import SSHTransport
import Steps

/// `provision reset` decides its order and refusals from the inventory alone, and reads kubectl's answers.
@Suite struct ResetPlanTests {
    /// s1 (first server), a1, s2, a2, s3, r1 (runner only), in that file order.
    func inventory() throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: t}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent], nodeName: node-a1}
              - {name: s2, address: 10.0.0.2, roles: [server]}
              - {name: a2, address: 10.0.1.2, roles: [agent, runner]}
              - {name: s3, address: 10.0.0.3, roles: [server]}
              - {name: r1, address: 10.0.2.1, roles: [runner]}
            gitlab: {url: https://gitlab.example.com, token: glpat-x, runnerPackage: {version: 17.7.1}}
            """, path: "/srv/lab.yaml", environment: ["HOME": "/root"])
    }

    func order(_ plan: ResetPlan) -> [String] { plan.entries.map(\.host.name) }

    @Test func everyK3sHostGoesAgentsFirstThenJoiningServersThenTheFirstServerWithNoDrain() throws {
        let plan = try ResetPlan(inventory: try inventory(), names: [])
        #expect(order(plan) == ["a1", "a2", "s2", "s3", "s1"])
        #expect(plan.entries.map(\.role) == [.agent, .agent, .server, .server, .firstServer])
        // The whole cluster goes: no node is drained anywhere.
        #expect(plan.entries.allSatisfy { $0.drainOn == nil })
    }

    @Test func hostsLeavingAStayingClusterAreDrainedOnTheFirstServerInResetOrder() throws {
        let plan = try ResetPlan(inventory: try inventory(), names: ["s3", "a2", "a1"])
        #expect(order(plan) == ["a1", "a2", "s3"])
        #expect(plan.entries.map { $0.drainOn?.name } == ["s1", "s1", "s1"])
        #expect(plan.summary.contains("a1 (agent): drain node node-a1 and delete it from the cluster (on s1)"))
        #expect(plan.summary.hasPrefix("k3s will be removed from 3 host(s):\n"))
    }

    @Test func theKubeconfigVariableGoesOnlyWithTheWholeCluster() throws {
        #expect(try ResetPlan(inventory: try inventory(), names: []).kubeconfigVariable == nil)  // no service account
        let withAccount = try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: t}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent]}
            gitlab: {url: https://gitlab.example.com, token: glpat-x, serviceAccount: {groupId: 7, environmentScope: lab}}
            """, path: "/srv/lab.yaml", environment: ["HOME": "/root"])
        let whole = try ResetPlan(inventory: withAccount, names: [])
        #expect(whole.kubeconfigVariable == .deleteVariable(owner: .group(7), key: "KUBECONFIG", environmentScope: "lab"))
        #expect(whole.summary.hasSuffix("  then delete CI/CD variable KUBECONFIG (environment scope lab) of group 7 in GitLab: it holds the kubeconfig of this cluster\n"))
        // An agent leaves a cluster that stays: the variable still points at a working cluster.
        #expect(try ResetPlan(inventory: withAccount, names: ["a1"]).kubeconfigVariable == nil)
    }

    @Test func theFirstServerAloneIsRefusedNamingWhoStays() throws {
        #expect {
            try ResetPlan(inventory: try inventory(), names: ["s1", "a1"])
        } throws: { error in
            let text = String(describing: error)
            return text.hasPrefix("s1 is the first server, and s2, a2, s3 join its cluster")
                && text.contains("provision reset /srv/lab.yaml --host s2 --host a2 --host s3")
        }
    }

    @Test func aHostWithoutAK3sRoleIsRefused() throws {
        #expect {
            try ResetPlan(inventory: try inventory(), names: ["a1", "r1"])
        } throws: { error in
            String(describing: error).hasPrefix("r1 has no k3s role (server or agent) in /srv/lab.yaml")
        }
    }

    @Test func kubectlSaysWhenTheNodeIsAlreadyGone() {
        func result(_ status: Int32, _ stderr: String) -> CommandResult {
            CommandResult(stdout: Data(), stderr: Data(stderr.utf8), exitStatus: status, exitSignal: nil)
        }
        #expect(Reset.nodeIsGone(result(1, "Error from server (NotFound): nodes \"a1\" not found\n"), node: "a1"))
        #expect(!Reset.nodeIsGone(result(1, "Error from server (NotFound): nodes \"a10\" not found\n"), node: "a1"))
        #expect(!Reset.nodeIsGone(result(1, "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n"), node: "a1"))
        #expect(Reset.drainCommand("it's") == "k3s kubectl drain 'it'\\''s' --ignore-daemonsets --delete-emptydir-data --force --timeout=120s")
    }

    @Test func theProbeAndCleanupOutputsAreRead() {
        #expect(Reset.installedScripts("/usr/local/bin/k3s-uninstall.sh\n/usr/local/bin/k3s-agent-uninstall.sh\n")
                == ["/usr/local/bin/k3s-agent-uninstall.sh", "/usr/local/bin/k3s-uninstall.sh"])
        #expect(Reset.installedScripts("").isEmpty)
        let (removed, left) = Reset.cleanupResult("removed /usr/local/share/provision/k3s-install.sh\nleft /usr/local/bin/k3s\n")
        #expect(removed == ["/usr/local/share/provision/k3s-install.sh"] && left == ["/usr/local/bin/k3s"])
    }
}
