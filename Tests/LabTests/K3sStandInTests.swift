import Foundation
import LabSupport
import Testing

/// The k3s stand-in (scripts/lab.d/k3s) behaves like k3s where `provision` touches it: the airgap bundle and its
/// install script, nodes that get Ready or not, the memory cgroup on a Pi, tokens, and kubectl.
@Suite(.serialized) struct K3sStandInTests {
    static let version = "v1.32.5+k3s1"
    static let makeBundle = Repo.root + "/scripts/lab.d/k3s/make-bundle"

    // MARK: helpers

    /// Runs `command` in `host` and requires exit 0, returning stdout.
    @discardableResult
    func sh(_ lab: Lab, _ host: String, _ command: String, stdin: String? = nil) throws -> String {
        let result = try exec(lab, host, command, stdin: stdin)
        guard result.status == 0 else {
            throw LabError.commandFailed(command: "\(host): \(command)", output: result)
        }
        return result.stdout
    }

    /// lab.exec with an optional stdin (small texts such as tokens; files go through `lab.copy`).
    func exec(_ lab: Lab, _ host: String, _ command: String, stdin: String? = nil) throws -> ProcessOutput {
        try run(Repo.labScript, ["exec", "--dir", lab.directory, host, "--", "sh", "-c", command], stdin: stdin)
    }

    /// Builds a bundle under the lab's directory (gone with the lab) and unpacks it into /root/k3s of `hosts`.
    func pushBundle(_ lab: Lab, version: String = version, to hosts: [String]) throws {
        let dir = lab.directory + "/k3s-bundle-" + version
        let made = try run(Self.makeBundle, [dir, version])
        #expect(made.status == 0, "\(made.stderr)")
        for host in hosts { try lab.copy(dir, to: host, at: "/root/k3s", mode: 0o755) }
    }

    /// What an admin does for an airgap install: binary and images in place, then the install script.
    func airgapInstall(_ lab: Lab, _ host: String, asset: String = "k3s", images: String = "amd64",
                       environment: String) throws -> ProcessOutput {
        try exec(lab, host, """
            cd /root/k3s && install -m 0755 \(asset) /usr/local/bin/k3s \
            && mkdir -p /var/lib/rancher/k3s/agent/images \
            && cp k3s-airgap-images-\(images).tar.zst /var/lib/rancher/k3s/agent/images/ \
            && \(environment) INSTALL_K3S_SKIP_DOWNLOAD=true ./install.sh
            """)
    }

    /// Server on `server`, its node-token copied to each agent host through stdin (never on a command line).
    func installServer(_ lab: Lab, _ server: String = "lab-1", grace: Int = 15) throws {
        let result = try airgapInstall(lab, server, environment: "K3S_STANDIN_GRACE=\(grace) INSTALL_K3S_EXEC=server")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("[INFO]  systemd: Starting k3s\n"))
        try waitUntil("the server's node-token") { try exec(lab, server, "test -s /var/lib/rancher/k3s/server/node-token").status == 0 }
    }

    func copyToken(_ lab: Lab, from server: String = "lab-1", to host: String, transform: String = "cat") throws {
        let token = try sh(lab, server, "\(transform) /var/lib/rancher/k3s/server/node-token")
        try sh(lab, host, "umask 077; cat > /root/node-token", stdin: token)
    }

    func installAgent(_ lab: Lab, _ host: String, server: String = "lab-1", extra: String = "") throws -> ProcessOutput {
        let address = try #require(lab.hosts.first { $0.name == server }?.address)
        return try airgapInstall(lab, host, environment:
            "K3S_URL=https://\(address):6443 K3S_TOKEN=$(cat /root/node-token) \(extra)")
    }

    /// node name → status of its Ready condition, from `kubectl get nodes -o json` on `host`.
    func readiness(_ lab: Lab, on host: String = "lab-1") throws -> [String: String] {
        let text = try sh(lab, host, "kubectl get nodes -o json")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(list["kind"] as? String == "List")
        var result: [String: String] = [:]
        for item in list["items"] as? [[String: Any]] ?? [] {
            #expect(item["kind"] as? String == "Node")
            let name = (item["metadata"] as? [String: Any])?["name"] as? String ?? "?"
            let conditions = (item["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
            result[name] = conditions.first { $0["type"] as? String == "Ready" }?["status"] as? String ?? "none"
        }
        return result
    }

    func waitUntil(_ what: String, timeout: Double = 20, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return }
            if Date() > deadline { throw StandInTestError.timeout(what) }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    enum StandInTestError: Error { case timeout(String) }

    // MARK: tests

    @Test func bundleHasTheReleaseAssetNamesAndEachBinaryItsVersion() throws {
        let base = NSTemporaryDirectory() + "k3s-bundle-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (version, commit) in [("v1.31.4+k3s1", nil), ("v1.32.5+k3s1", "8e8f2a47")] as [(String, String?)] {
            let dir = base + "/" + version
            let made = try run(Self.makeBundle, [dir, version])
            #expect(made.status == 0, "\(made.stderr)")
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            for asset in ["install.sh", "k3s", "k3s-arm64", "k3s-armhf", "k3s-airgap-images-amd64.tar.zst",
                          "k3s-airgap-images-arm64.tar.zst", "k3s-airgap-images-arm.tar.zst"] {
                #expect(names.contains(asset), "\(asset) missing from \(names)")
            }
            let sums = try run("/bin/sh", ["-c", "cd '\(dir)' && sha256sum k3s k3s-arm64 k3s-armhf | cut -d' ' -f1 | sort -u | wc -l"])
            #expect(sums.stdout == "3\n", "one hash per architecture")
            let again = try run("/bin/sh", ["-c", "'\(Self.makeBundle)' '\(dir).2' '\(version)' >/dev/null && cmp '\(dir)/k3s' '\(dir).2/k3s'"])
            #expect(again.status == 0, "a bundle is reproducible: \(again.stdout)")
            let reported = try run(dir + "/k3s", ["--version"])
            let firstLine = reported.stdout.split(separator: "\n").first.map(String.init) ?? ""
            #expect(firstLine.hasPrefix("k3s version \(version) ("))
            if let commit { #expect(firstLine == "k3s version \(version) (\(commit))") }
            #expect(reported.stdout.hasSuffix("\ngo version go1.23.8\n") || !version.hasPrefix("v1.32"))
        }
    }

    @Test func serverAndAgentGetReadyAndARerunOfTheInstallScriptRestartsNothing() async throws {
        try await withLab(hosts: 2) { lab in
            try pushBundle(lab, to: ["lab-1", "lab-2"])
            let started = Date()
            try installServer(lab)
            try waitUntil("lab-1 Ready") { try readiness(lab)["lab-1"] == "True" }
            let serverReady = Date().timeIntervalSince(started)
            try copyToken(lab, to: "lab-2")
            let agentStart = Date()
            let agent = try installAgent(lab, "lab-2")
            #expect(agent.status == 0, "\(agent.stdout)\(agent.stderr)")
            #expect(agent.stdout.contains("[INFO]  Creating uninstall script /usr/local/bin/k3s-agent-uninstall.sh\n"))
            try waitUntil("lab-2 Ready") { try readiness(lab)["lab-2"] == "True" }
            print("k3s stand-in: server Ready after \(serverReady) s, agent Ready after \(Date().timeIntervalSince(agentStart)) s")
            #expect(try readiness(lab) == ["lab-1": "True", "lab-2": "True"])
            let nodes = try sh(lab, "lab-1", "kubectl get nodes")
            #expect(nodes.contains("control-plane,master"))
            #expect(try sh(lab, "lab-2", "kubectl get nodes 2>&1 || true").contains("localhost:8080 was refused"),
                    "an agent has no kubeconfig")

            // Files and modes the contract names.
            let modes = try sh(lab, "lab-2", "stat -c '%a %n' /etc/systemd/system/k3s-agent.service.env; readlink /usr/local/bin/kubectl")
            #expect(modes == "600 /etc/systemd/system/k3s-agent.service.env\nk3s\n")
            let unit = try sh(lab, "lab-1", "cat /etc/systemd/system/k3s.service")
            for line in ["Type=notify", "EnvironmentFile=-/etc/systemd/system/k3s.service.env", "KillMode=process",
                         "Delegate=yes", "Restart=always", "RestartSec=5s", "ExecStartPre=-/sbin/modprobe br_netfilter",
                         "ExecStartPre=-/sbin/modprobe overlay", "ExecStart=/usr/local/bin/k3s \\\n    server \\\n"] {
                #expect(unit.contains(line), "unit lacks \(line)")
            }
            let token = try sh(lab, "lab-1", "cat /var/lib/rancher/k3s/server/token")
            #expect(token.hasPrefix("K10") && token.contains("::server:"))

            // The same script again, on both: nothing changed, so nothing restarts.
            let events = (lab.serviceEvents("lab-1"), lab.serviceEvents("lab-2"))
            let again1 = try airgapInstall(lab, "lab-1", environment: "K3S_STANDIN_GRACE=15 INSTALL_K3S_EXEC=server")
            let again2 = try installAgent(lab, "lab-2")
            for again in [again1, again2] {
                #expect(again.status == 0, "\(again.stderr)")
                #expect(again.stdout.hasSuffix("[INFO]  No change detected so skipping service start\n"), "\(again.stdout)")
                #expect(!again.stdout.contains("K10"), "the install script never prints a token")
            }
            #expect(lab.serviceEvents("lab-1") == events.0)
            #expect(lab.serviceEvents("lab-2") == events.1)

            // No token in any process's argv on either host (grep reads the patterns from a file, not its argv).
            try sh(lab, "lab-1", "umask 077; sed 's/.*::server://' /var/lib/rancher/k3s/server/token > /root/secret-patterns; cat /var/lib/rancher/k3s/server/token >> /root/secret-patterns")
            let patterns = try sh(lab, "lab-1", "cat /root/secret-patterns")
            try sh(lab, "lab-2", "umask 077; cat > /root/secret-patterns", stdin: patterns)
            for host in ["lab-1", "lab-2"] {
                let leaks = try exec(lab, host, "grep -l -a -F -f /root/secret-patterns /proc/[0-9]*/cmdline")
                #expect(leaks.stdout.isEmpty, "\(host): token in the argv of \(leaks.stdout)")
                #expect(try sh(lab, host, "pgrep -c k3s-") == "1\n", "k3s-server / k3s-agent as process name")
            }
        }
    }

    @Test func aWrongAgentTokenNeverJoinsAndLogsUnauthorized() async throws {
        try await withLab(hosts: 2) { lab in
            try pushBundle(lab, to: ["lab-1", "lab-2"])
            try installServer(lab)
            try copyToken(lab, to: "lab-2", transform: "sed 's/::server:.*/::server:not-the-password/'")
            // The real script would wait for ever here (Type=notify, TimeoutStartSec=0): start without waiting.
            let install = try installAgent(lab, "lab-2", extra: "INSTALL_K3S_SKIP_START=true")
            #expect(install.status == 0, "\(install.stderr)")
            try sh(lab, "lab-2", "systemctl start --no-block k3s-agent")
            let expected = "level=info msg=\"Waiting to retrieve agent configuration; server is not ready: failed to retrieve " +
                "configuration from server: https://127.0.0.1:6444/v1-k3s/config: 401 Unauthorized\""
            try waitUntil("the 401 line") { try sh(lab, "lab-2", "journalctl -u k3s-agent --no-pager").contains(expected) }
            try await Task.sleep(nanoseconds: 3_000_000_000)
            #expect(try readiness(lab) == ["lab-1": "True"], "lab-2 never registers")
            #expect(try sh(lab, "lab-1", "journalctl -u k3s --no-pager").contains("invalid username/password combination"))
            // Type=notify: without READY=1 the unit stays activating (TimeoutStartSec=0: for ever), as under systemd.
            let state = try exec(lab, "lab-2", "systemctl is-active k3s-agent")
            #expect(state.status == 3 && state.stdout == "activating\n")
            let notify = try sh(lab, "lab-2", "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value k3s-agent)/environ | grep ^NOTIFY_SOCKET=")
            #expect(notify == "NOTIFY_SOCKET=/run/standin/notify/k3s-agent.service\n")
            // So a waiting `systemctl restart` (what the install script runs) hangs: only a bound ends it.
            let restart = try exec(lab, "lab-2", "timeout 2 systemctl restart k3s-agent")
            #expect(restart.status == 124, "systemctl waits for READY=1: \(restart.stderr)")
            #expect(try exec(lab, "lab-2", "systemctl is-active k3s-agent").stdout == "activating\n")
            // k3s's ExecStartPre= modprobes succeed quietly, as on a Debian host with those modules.
            #expect(!(try sh(lab, "lab-2", "journalctl -u k3s-agent --no-pager")).contains("modprobe"))
        }
    }

    @Test func aPiWithoutTheMemoryCgroupFailsLikeK3sUntilCmdlineIsFixed() async throws {
        try await withLab(hosts: 1, pi: [1]) { lab in
            try pushBundle(lab, to: ["lab-1"])
            let wrongArch = try exec(lab, "lab-1", "/root/k3s/k3s --version")
            #expect(wrongArch.status == 126)
            #expect(wrongArch.stderr.contains("cannot execute binary file: Exec format error"))
            let install = try airgapInstall(lab, "lab-1", asset: "k3s-arm64", images: "arm64", environment: "INSTALL_K3S_EXEC=server")
            // k3s exits before READY=1, so the script's waiting `systemctl restart` fails, as on a real Pi.
            #expect(install.status == 1, "\(install.stderr)")
            #expect(install.stderr.contains("Job for k3s.service failed because the control process exited with error code.\n"))
            #expect(install.stdout.contains("[INFO]  Failed to find memory cgroup, you may need to add \"cgroup_memory=1 " +
                                            "cgroup_enable=memory\" to your linux cmdline (/boot/cmdline.txt on a Raspberry Pi)\n"))
            let fatal = "level=fatal msg=\"failed to find memory cgroup, you may need to add \\\"cgroup_memory=1 " +
                "cgroup_enable=memory\\\" to your linux cmdline (/boot/cmdline.txt on a Raspberry Pi)\""
            try waitUntil("the fatal line") { try sh(lab, "lab-1", "journalctl -u k3s --no-pager").contains(fatal) }
            #expect(try exec(lab, "lab-1", "systemctl is-active k3s").stdout != "active\n")

            let reboots = lab.reboots("lab-1")
            try sh(lab, "lab-1", "sed -i '1s/$/ cgroup_memory=1 cgroup_enable=memory/' /boot/firmware/cmdline.txt; nohup sh -c 'sleep 0.3; reboot' >/dev/null 2>&1 &")
            try lab.waitForSSH("lab-1", afterReboots: reboots)
            try waitUntil("lab-1 Ready after the reboot") { (try? readiness(lab)["lab-1"]) == "True" }
            #expect(try sh(lab, "lab-1", "kubectl get node lab-1 -o jsonpath='{.metadata.labels.kubernetes\\.io/arch}'") == "arm64")
        }
    }

    @Test func aStoppedAgentTurnsNotReadyAfterTheGracePeriodAndReadyAgain() async throws {
        try await withLab(hosts: 2) { lab in
            try pushBundle(lab, to: ["lab-1", "lab-2"])
            try installServer(lab, grace: 3)
            try copyToken(lab, to: "lab-2")
            #expect(try installAgent(lab, "lab-2").status == 0)
            try waitUntil("lab-2 Ready") { try readiness(lab)["lab-2"] == "True" }
            try sh(lab, "lab-2", "systemctl stop k3s-agent")
            let stopped = Date()
            try waitUntil("lab-2 NotReady", timeout: 15) { try readiness(lab)["lab-2"] == "Unknown" }
            #expect(Date().timeIntervalSince(stopped) >= 2.5, "not before the grace period")
            let table = try sh(lab, "lab-1", "kubectl get node lab-2 --no-headers")
            #expect(table.hasPrefix("lab-2   NotReady   <none>"))
            let ready = try sh(lab, "lab-1", "kubectl get node lab-2 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].message}'")
            #expect(ready == "Kubelet stopped posting node status.")
            try sh(lab, "lab-2", "systemctl start k3s-agent")
            try waitUntil("lab-2 Ready again") { try readiness(lab)["lab-2"] == "True" }
            #expect(try sh(lab, "lab-1", "kubectl get node lab-2 -o jsonpath='{.spec.taints}'") == "")
        }
    }

    @Test func theServiceAccountTokenArrivesAndKubectlVerbsAnswerLikeKubectl() async throws {
        try await withLab(hosts: 2) { lab in
            try pushBundle(lab, to: ["lab-1", "lab-2"])
            try installServer(lab)
            try copyToken(lab, to: "lab-2")
            #expect(try installAgent(lab, "lab-2").status == 0)
            try waitUntil("both Ready") { try readiness(lab) == ["lab-1": "True", "lab-2": "True"] }
            let manifest = """
                apiVersion: v1
                kind: ServiceAccount
                metadata:
                  name: gitlab
                  namespace: kube-system
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: ClusterRoleBinding
                metadata:
                  name: gitlab-admin
                roleRef:
                  apiGroup: rbac.authorization.k8s.io
                  kind: ClusterRole
                  name: cluster-admin
                subjects:
                  - kind: ServiceAccount
                    name: gitlab
                    namespace: kube-system
                ---
                apiVersion: v1
                kind: Secret
                metadata:
                  name: gitlab-token
                  namespace: kube-system
                  annotations:
                    kubernetes.io/service-account.name: gitlab
                type: kubernetes.io/service-account-token

                """
            let applied = try sh(lab, "lab-1", "kubectl apply -f -", stdin: manifest)
            #expect(applied == "serviceaccount/gitlab created\nclusterrolebinding.rbac.authorization.k8s.io/gitlab-admin created\nsecret/gitlab-token created\n")
            let get = "kubectl get secret gitlab-token -n kube-system -o jsonpath='{.data.token}'"
            try waitUntil("the token controller", timeout: 5) { !(try sh(lab, "lab-1", get)).isEmpty }
            #expect(try sh(lab, "lab-1", "kubectl apply -f -", stdin: manifest).components(separatedBy: "unchanged").count == 4)
            let namespace = try sh(lab, "lab-1", "kubectl get secret gitlab-token -n kube-system -o jsonpath='{.data.namespace}' | base64 -d")
            #expect(namespace == "kube-system")
            try sh(lab, "lab-1", "kubectl get secret gitlab-token -n kube-system -o jsonpath='{.data.ca\\.crt}' | base64 -d > /root/ca.crt; umask 077; \(get) | base64 -d > /root/sa-token")
            // Only the token (no kubeconfig client certificate, which would win): what GitLab is given.
            let asGitLab = "kubectl --kubeconfig /dev/null --server https://\(lab.hosts[0].address):6443 --certificate-authority /root/ca.crt --token \"$(cat /root/sa-token)\""
            #expect(try sh(lab, "lab-1", "\(asGitLab) auth can-i list nodes") == "yes\n")
            #expect(try sh(lab, "lab-1", "kubectl delete clusterrolebinding gitlab-admin") == "clusterrolebinding.rbac.authorization.k8s.io \"gitlab-admin\" deleted\n")
            let denied = try exec(lab, "lab-1", "\(asGitLab) auth can-i list nodes")
            #expect(denied.status == 1 && denied.stdout == "no\n")
            let forbidden = try exec(lab, "lab-1", "\(asGitLab) get nodes")
            #expect(forbidden.stderr == "Error from server (Forbidden): nodes is forbidden: User \"system:serviceaccount:kube-system:gitlab\" cannot list resource \"nodes\" in API group \"\" at the cluster scope\n")
            // The admin kubeconfig's client certificate wins over --token, as with real kubectl.
            #expect(try sh(lab, "lab-1", "kubectl auth can-i list nodes --token \"$(cat /root/sa-token)\"") == "yes\n")

            let missing = try exec(lab, "lab-1", "kubectl get node lab-9")
            #expect(missing.status == 1 && missing.stderr == "Error from server (NotFound): nodes \"lab-9\" not found\n")
            #expect(try sh(lab, "lab-1", "kubectl cluster-info").contains("\u{1B}[0;32mKubernetes control plane\u{1B}[0m is running at \u{1B}[0;33mhttps://127.0.0.1:6443\u{1B}[0m"))
            let blocked = try exec(lab, "lab-1", "kubectl drain lab-2")
            #expect(blocked.status == 1)
            #expect(blocked.stderr.contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/svclb-traefik-"))
            let drained = try sh(lab, "lab-1", "kubectl drain lab-2 --ignore-daemonsets --delete-emptydir-data --timeout=60s")
            #expect(drained.hasPrefix("node/lab-2 already cordoned\n") && drained.hasSuffix("node/lab-2 drained\n"))
            #expect(try sh(lab, "lab-1", "kubectl get node lab-2 --no-headers").hasPrefix("lab-2   Ready,SchedulingDisabled   <none>"))
            #expect(try sh(lab, "lab-1", "kubectl uncordon lab-2") == "node/lab-2 uncordoned\n")
            // annotate: any key already there needs --overwrite, even with the same value; removing does not.
            #expect(try sh(lab, "lab-1", "kubectl annotate node lab-2 example.com/owner=ci") == "node/lab-2 annotated\n")
            let again = try exec(lab, "lab-1", "kubectl annotate node/lab-2 example.com/owner=ci")
            #expect(again.status == 1 && again.stdout.isEmpty)
            #expect(again.stderr == "error: --overwrite is false but found the following declared annotation(s): 'example.com/owner' already has a value (ci)\n")
            #expect(try sh(lab, "lab-1", "kubectl annotate --overwrite node lab-2 example.com/owner=lab") == "node/lab-2 annotated\n")
            #expect(try sh(lab, "lab-1", "kubectl get node lab-2 -o jsonpath='{.metadata.annotations.example\\.com/owner}'") == "lab")
            #expect(try sh(lab, "lab-1", "kubectl annotate node lab-2 example.com/owner-") == "node/lab-2 annotated\n")
            #expect(try sh(lab, "lab-1", "kubectl get node lab-2 -o jsonpath='{.metadata.annotations}'").contains("example.com/owner") == false)
            let none = try exec(lab, "lab-1", "kubectl annotate node lab-2")
            #expect(none.status == 1 && none.stderr == "error: at least one annotation update is required\n")
            let partly = try exec(lab, "lab-1", "kubectl annotate node lab-9 lab-2 a=b")
            #expect(partly.status == 1 && partly.stdout == "node/lab-2 annotated\n")
            #expect(partly.stderr == "Error from server (NotFound): nodes \"lab-9\" not found\n")
            #expect(try sh(lab, "lab-1", "kubectl delete node lab-2") == "node \"lab-2\" deleted\n")
            #expect(try readiness(lab) == ["lab-1": "True"])
            // A node that is gone: drain and delete say NotFound, as kubectl does (provision reset reads that).
            for verb in ["drain lab-2 --ignore-daemonsets --delete-emptydir-data --force --timeout=120s", "delete node lab-2"] {
                let gone = try exec(lab, "lab-1", "kubectl \(verb)")
                #expect(gone.status == 1 && gone.stdout.isEmpty, "\(verb)")
                #expect(gone.stderr == "Error from server (NotFound): nodes \"lab-2\" not found\n", "\(verb)")
            }
            // Without authentication the API answers 401, as k3s (anonymous-auth=false); /ping is open.
            #expect(try sh(lab, "lab-1", "curl -s --cacert /root/ca.crt https://127.0.0.1:6443/readyz").contains("\"code\": 401"))
            #expect(try sh(lab, "lab-1", "curl -s --cacert /root/ca.crt -H \"Authorization: Bearer $(cat /root/sa-token)\" https://127.0.0.1:6443/readyz") == "ok")
        }
    }
}
