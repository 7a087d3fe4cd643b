import Foundation
import LabSupport
import Testing

/// `provision kubeconfig` hands out the cluster's admin kubeconfig, usable from another machine.
@Suite(.serialized) struct K3sKubeconfigTests {
    @Test func theKubeconfigPointsAtTheServerWorksFromAnotherHostAndIsOwnerOnly() async throws {
        try await withLab(hosts: 3) { lab in
            let cluster = try K3sCluster(lab)
            let early = try cluster.provision(["kubeconfig", cluster.inventory])
            #expect(early.status == 1 && early.stdout.isEmpty)
            #expect(early.stderr.contains("k3s is not installed on the first server (no /etc/rancher/k3s/k3s.yaml); run provision apply"),
                    "\(early.stderr)")
            try cluster.apply()

            let file = lab.directory + "/admin.yaml"
            let written = try cluster.provision(["kubeconfig", cluster.inventory, "--output", file, "-v"])
            #expect(written.status == 0, "\(written.stderr)")
            #expect(written.stdout.isEmpty)
            #expect(written.stderr.contains("to \(file) (mode 0600)"))
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let servers = text.split(separator: "\n").filter { $0.contains("server:") }.map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(servers == ["server: https://\(lab.hosts[0].address):6443"])
            // The admin client key is in the file, and nowhere in what -v logged.
            let key = try #require(text.split(separator: "\n").first { $0.contains("client-key-data:") }?
                .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces))
            #expect(key.count > 20)
            #expect(!written.stderr.contains(key))
            #expect(written.stderr.contains("cat /etc/rancher/k3s/k3s.yaml"), "the -v log shows the command")

            // Another host of the cluster reaches the API with it (the stand-in's kubectl lives on the hosts).
            try lab.copy(file, to: "lab-2", at: "/root/admin.yaml", mode: 0o600)
            let listed = try lab.exec("lab-2", "k3s kubectl --kubeconfig /root/admin.yaml get nodes -o name")
            #expect(listed.status == 0, "\(listed.stderr)")
            #expect(listed.stdout == "node/lab-1\nnode/lab-2\nnode/lab-3\n")

            let printed = try cluster.provision(["kubeconfig", cluster.inventory])
            #expect(printed.status == 0, "\(printed.stderr)")
            #expect(printed.stdout == text)
            #expect(!printed.stderr.contains(key))
        }
    }
}
