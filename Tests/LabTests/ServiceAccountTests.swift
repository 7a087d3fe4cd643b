import Foundation
import LabSupport
import Testing

/// `gitlab.serviceAccount`: a service account in the cluster whose kubeconfig lands in the fake GitLab as a
/// protected file variable on project 200, works from another host, is written once, and is put back when edited.
@Suite(.serialized) struct ServiceAccountTests {
    /// The k3s cluster's inventory (lab-1 server, lab-2 agent) with a gitlab block that asks for the service account.
    func inventory(_ lab: Lab) throws -> (K3sCluster, [String: String]) {
        let cluster = try K3sCluster(lab)
        let environment = try cluster.addGitLab("  serviceAccount: {projectId: 200}\n")
        return (cluster, environment)
    }

    func kubeconfigVariables(_ lab: Lab) throws -> [[String: Any]] {
        (try lab.gitlabState(secrets: true)["variables"] as? [[String: Any]] ?? []).filter { $0["key"] as? String == "KUBECONFIG" }
    }

    /// POST and PUT calls on variables in the fake's log.
    func variableWrites(_ lab: Lab) throws -> [String] {
        try lab.gitlabLog().compactMap { entry in
            guard let method = entry["method"] as? String, ["POST", "PUT"].contains(method),
                  let path = entry["path"] as? String, path.contains("/variables") else { return nil }
            return "\(method) \(path)"
        }
    }

    @Test func theKubeconfigVariableIsCreatedOnceWorksFromAnotherHostAndIsPutBackWhenEdited() async throws {
        try await withLab(hosts: 2) { lab in
            let (cluster, environment) = try inventory(lab)
            let first = try run(Repo.provisionBinary, ["apply", cluster.inventory, "-v"], environment: environment)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")

            let variables = try kubeconfigVariables(lab)
            #expect(variables.count == 1)
            let variable = try #require(variables.first)
            #expect(variable["owner"] as? String == "project" && variable["owner_id"] as? Int == 200)
            #expect(variable["variable_type"] as? String == "file" && variable["protected"] as? Bool == true)
            #expect(variable["masked"] as? Bool == false && variable["raw"] as? Bool == true)
            #expect(variable["environment_scope"] as? String == "*")
            let value = try #require(variable["value"] as? String)
            #expect(value.contains("server: 'https://\(lab.hosts[0].address):6443'"))
            #expect(try variableWrites(lab) == ["POST /api/v4/projects/200/variables"])

            // The token the kubeconfig carries is nowhere in what provision printed, nor in its journal.
            let token = try #require(value.split(separator: "\n").first { $0.contains("token:") }?
                .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: CharacterSet(charactersIn: " '")))
            #expect(token.count > 20)
            #expect(!first.stdout.contains(token) && !first.stderr.contains(token))
            let journal = lab.directory + "/.provision"
            for file in try FileManager.default.contentsOfDirectory(atPath: journal) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: journal + "/" + file))
                #expect(bytes.range(of: Data(token.utf8)) == nil, "\(file)")
            }
            // The service account is what the issue asks for, on the server.
            let binding = try lab.exec("lab-1", "k3s kubectl get clusterrolebinding gitlab-admin -o jsonpath='{.roleRef.name} {.subjects[0].namespace}/{.subjects[0].name}'")
            #expect(binding.stdout == "cluster-admin kube-system/gitlab", "\(binding.stderr)")
            #expect(try lab.exec("lab-1", "stat -c '%a' /var/lib/provision/gitlab-service-account.yaml").stdout == "600\n")

            // A CI job's kubectl on another host: the token user may do anything (cluster-admin).
            let local = lab.directory + "/gitlab-kubeconfig.yaml"
            try value.write(toFile: local, atomically: true, encoding: .utf8)
            try lab.copy(local, to: "lab-2", at: "/root/gitlab-kubeconfig.yaml", mode: 0o600)
            let allowed = try lab.exec("lab-2", "k3s kubectl --kubeconfig /root/gitlab-kubeconfig.yaml auth can-i '*' '*'")
            #expect(allowed.stdout == "yes\n", "\(allowed.stderr)")
            let who = try lab.exec("lab-2", "k3s kubectl --kubeconfig /root/gitlab-kubeconfig.yaml get serviceaccount gitlab -n kube-system -o name")
            #expect(who.stdout == "serviceaccount/gitlab\n", "\(who.stdout)\(who.stderr)")

            // A second apply writes nothing to GitLab.
            let second = try run(Repo.provisionBinary, ["apply", cluster.inventory], environment: environment)
            #expect(second.status == 0, "\(second.stdout)\(second.stderr)")
            #expect(try variableWrites(lab) == ["POST /api/v4/projects/200/variables"])
            #expect(try kubeconfigVariables(lab).compactMap { $0["value"] as? String } == [value])
            #expect(try lab.gitlabState()["counts"].flatMap { ($0 as? [String: Any])?["project_variables"] as? Int } == 1)

            // Someone edits the variable in GitLab: the next apply puts the kubeconfig back, with one PUT.
            let edited = try lab.gitlabAPI("PUT", "/projects/200/variables/KUBECONFIG", token: "project-bot",
                                           form: ["value=apiVersion: v1", "protected=false"])
            #expect(edited.status == 200)
            let before = try variableWrites(lab)
            let third = try run(Repo.provisionBinary, ["apply", cluster.inventory], environment: environment)
            #expect(third.status == 0, "\(third.stdout)\(third.stderr)")
            #expect(third.stderr.contains("gitlab-kubeconfig-variable: changing: CI/CD variable KUBECONFIG of project 200 (environment scope *): its kubeconfig differs, it is not protected"),
                    "\(third.stderr)")
            #expect(!third.stdout.contains(token) && !third.stderr.contains(token))
            #expect(try variableWrites(lab) == before + ["PUT /api/v4/projects/200/variables/KUBECONFIG"])
            let restored = try #require(try kubeconfigVariables(lab).first)
            #expect(restored["value"] as? String == value && restored["protected"] as? Bool == true)

            // The whole cluster goes: so does the variable that points at it.
            let reset = try run(Repo.provisionBinary, ["reset", cluster.inventory, "--yes"], environment: environment)
            #expect(reset.status == 0, "\(reset.stdout)\(reset.stderr)")
            #expect(reset.stderr.contains("then delete CI/CD variable KUBECONFIG (environment scope *) of project 200 in GitLab"), "\(reset.stderr)")
            #expect(reset.stdout.contains("GitLab: delete CI/CD variable KUBECONFIG (environment scope *) of project 200 in GitLab: done"), "\(reset.stdout)")
            #expect(try kubeconfigVariables(lab).isEmpty)
        }
    }
}
