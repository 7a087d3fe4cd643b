import Foundation
import LabSupport
import Testing

/// The lab's GitLab Runner fixtures: the fake GitLab that `up` starts in the services namespace, the signed mirror of
/// GitLab's gitlab-runner apt repository with the gitlab-runner stand-in, and Debian's real docker.io from the lab's
/// apt repository. What a runner host goes through, by hand, as `provision` will do it.
@Suite(.serialized) struct LabRunnerFixtureTests {
    static let keyring = "/etc/apt/keyrings/runner_gitlab-runner-archive-keyring.gpg"

    /// The runner repository as an admin adds packages.gitlab.com's (deb822 source, signed-by), but without its key yet.
    func addRunnerSource(_ lab: Lab, _ host: String) throws {
        let source = """
            Types: deb
            URIs: \(lab.runnerRepositoryURL)/debian
            Suites: bookworm
            Components: main
            Signed-By: \(Self.keyring)

            """
        let local = NSTemporaryDirectory() + "runner-source-" + UUID().uuidString
        try source.write(toFile: local, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: local) }
        try lab.copy(local, to: host, at: "/etc/apt/sources.list.d/runner_gitlab-runner.sources")
    }

    /// Installs the repository's key into /etc/apt/keyrings, refreshes apt and installs `packages`.
    func installRunner(_ lab: Lab, _ host: String, _ packages: String) throws -> ProcessOutput {
        try addRunnerSource(lab, host)
        return try lab.exec(host, """
            set -e
            install -m 0755 -d /etc/apt/keyrings
            curl -fsSL '\(lab.runnerRepositoryURL)/gpgkey' | gpg --dearmor > \(Self.keyring)
            apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q \(packages) 2>&1
            """)
    }

    /// A 0600 env file on the host with the runner's token as CI_SERVER_TOKEN (what `register --token` reads from the
    /// environment), so the token never appears on a command line.
    func putToken(_ lab: Lab, _ host: String, _ token: String) throws {
        let local = NSTemporaryDirectory() + "runner-token-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: local, contents: Data("CI_SERVER_TOKEN=\(token)\n".utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: local])
        }
        defer { try? FileManager.default.removeItem(atPath: local) }
        try lab.copy(local, to: host, at: "/root/runner-token.env", mode: 0o600)
    }

    func register(_ lab: Lab, _ host: String, _ arguments: String) throws -> ProcessOutput {
        try lab.exec(host, "set -a; . /root/runner-token.env; set +a; gitlab-runner register --non-interactive \(arguments)")
    }

    /// /etc/gitlab-runner/config.toml as Python's tomllib reads it.
    func config(_ lab: Lab, _ host: String) throws -> [String: Any] {
        let out = try lab.exec(host, "python3 -c 'import json, sys, tomllib; json.dump(tomllib.load(open(\"/etc/gitlab-runner/config.toml\", \"rb\")), sys.stdout, default=str)'")
        return try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any], "\(out.stderr)")
    }

    @Test func aRunnerInstalledFromTheSignedMirrorRegistersGoesOnlineAndUnregisters() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            let tokens = try FileManager.default.attributesOfItem(atPath: lab.gitlabTokensPath)
            #expect((tokens[.posixPermissions] as? Int) == 0o600)
            #expect(lab.gitlabURL == "http://\(lab.servicesAddress):8929")
            #expect(lab.runnerRepositoryURL == "http://\(lab.servicesAddress):8080/runner/gitlab-runner")

            // Without the key apt refuses the repository: it is signed.
            try addRunnerSource(lab, host)
            let unsigned = try lab.exec(host, "touch \(Self.keyring); apt-get update 2>&1; apt-cache policy gitlab-runner")
            #expect(unsigned.stdout.contains("couldn't be verified because the public key is not available: NO_PUBKEY"),
                    "\(unsigned.stdout)")
            #expect(!unsigned.stdout.contains("17.7.1-1"))

            // Pinned alone, 17.7.1 cannot be installed: it wants the helper images of its own version (as GitLab's does).
            let alone = try installRunner(lab, host, "-s gitlab-runner=17.7.1-1")
            #expect(alone.status != 0)
            #expect(alone.stdout.contains("gitlab-runner : Depends: gitlab-runner-helper-images (= 17.7.1-1) but 17.8.0-1 is to be installed"),
                    "\(alone.stdout)")
            let install = try installRunner(lab, host, "gitlab-runner=17.7.1-1 gitlab-runner-helper-images=17.7.1-1")
            #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
            #expect(install.stdout.contains("GitLab Runner: creating gitlab-runner..."))

            let installed = try lab.exec(host, """
                gitlab-runner --version | head -n 1; getent passwd gitlab-runner | cut -d: -f6
                stat -c %a /etc/gitlab-runner; systemctl is-active gitlab-runner; readlink -f /usr/bin/gitlab-runner
                gitlab-runner status 2>/dev/null; echo "status $?"
                """)
            #expect(installed.stdout == """
                Version:      17.7.1
                /home/gitlab-runner
                700
                active
                /usr/lib/gitlab-runner/gitlab-runner
                gitlab-runner: Service is running
                status 0

                """)

            // A runner made in GitLab (its tags live there), registered on the host with the token from a file.
            let runner = try lab.createGitLabRunner(form: ["runner_type=project_type", "project_id=200", "tag_list=docker"])
            #expect(try lab.gitlabRunner(id: runner.id)?["status"] as? String == "never_contacted")
            try putToken(lab, host, runner.token)
            let registered = try register(lab, host, "--url \(lab.gitlabURL) --executor docker --docker-image alpine:3.20 --docker-privileged --docker-volumes /certs/client --description lab-1-docker")
            #expect(registered.status == 0, "\(registered.stderr)")
            #expect(registered.stderr.contains("Verifying runner... is valid"))
            #expect(registered.stderr.contains("Runner registered successfully. Feel free to start it, but if it's running already the config should be automatically reloaded!"))

            let blocks = try config(lab, host)["runners"] as? [[String: Any]] ?? []
            #expect(blocks.count == 1)
            let block = try #require(blocks.first)
            #expect(block["name"] as? String == "lab-1-docker" && block["url"] as? String == lab.gitlabURL)
            #expect(block["id"] as? Int == runner.id && block["token"] as? String == runner.token)
            #expect(block["executor"] as? String == "docker")
            let docker = try #require(block["docker"] as? [String: Any])
            #expect(docker["image"] as? String == "alpine:3.20" && docker["privileged"] as? Bool == true)
            #expect(docker["volumes"] as? [String] == ["/certs/client", "/cache"], "register appends /cache")

            // The running service picks the new block up and polls for jobs: GitLab sees the runner online.
            let started = Date()
            let online = try lab.waitForGitLabRunner(id: runner.id, status: "online", timeout: 8)
            #expect(online?["status"] as? String == "online", "\(String(describing: online))")
            #expect(Date().timeIntervalSince(started) < 6)
            let systemID = try lab.exec(host, "cat /etc/gitlab-runner/.runner_system_id").stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(systemID.wholeMatch(of: /s_[0-9a-f]{12}/) != nil, "\(systemID)")
            let managers = online?["managers"] as? [[String: Any]] ?? []
            #expect(managers.map { $0["system_id"] as? String } == [systemID])
            #expect(managers.first?["version"] as? String == "17.7.1")
            // verify made the manager; then the service itself polls for jobs with the runner's token.
            var polls: [[String: Any]] = []
            for _ in 0..<40 where polls.isEmpty {
                try await Task.sleep(for: .milliseconds(200))
                polls = try lab.gitlabLog().filter { $0["path"] as? String == "/api/v4/jobs/request" }
            }
            #expect(polls.first?["status"] as? Int == 204 && polls.first?["user"] as? String == "runner#\(runner.id)",
                    "\(polls)")
            #expect(Date().timeIntervalSince(started) < 6, "the service polls within its check_interval of 3 s")

            // With a glrt- token the runner's settings belong to GitLab: --tag-list is fatal and nothing changes.
            let before = try lab.exec(host, "sha256sum /etc/gitlab-runner/config.toml").stdout
            let tagged = try register(lab, host, "--url \(lab.gitlabURL) --executor docker --docker-image alpine:3.20 --tag-list docker")
            #expect(tagged.status == 1)
            #expect(tagged.stderr.contains("FATAL: Runner configuration other than name and executor configuration is reserved (specifically --locked, --access-level, --run-untagged, --maximum-timeout, --paused, --tag-list, and --maintenance-note) and cannot be specified when registering with a runner authentication token."),
                    "\(tagged.stderr)")
            #expect(try lab.exec(host, "sha256sum /etc/gitlab-runner/config.toml").stdout == before)
            #expect(!tagged.stderr.contains(runner.token) && !registered.stderr.contains(runner.token))

            let listed = try lab.exec(host, "gitlab-runner list")
            #expect(listed.stderr.contains("lab-1-docker") && listed.stderr.contains("  Executor=docker Token=glrt-")
                    && listed.stderr.contains(" URL=\(lab.gitlabURL)\n"), "\(listed.stderr)")

            // unregister removes this host's runner manager in GitLab (the runner stays) and the block.
            let unregistered = try lab.exec(host, "gitlab-runner unregister --name lab-1-docker")
            #expect(unregistered.status == 0, "\(unregistered.stderr)")
            #expect(unregistered.stderr.contains("Unregistering runner from GitLab succeeded"))
            #expect((try config(lab, host)["runners"] as? [Any] ?? []).isEmpty)
            let kept = try lab.gitlabRunner(id: runner.id)
            #expect(kept != nil && (kept?["managers"] as? [Any] ?? [1]).isEmpty)
        }
    }

    @Test func overHTTPSTheRunnerNeedsTheLabCAAndVerifyDropsARunnerDeletedInGitLab() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            let install = try installRunner(lab, host, "gitlab-runner")
            #expect(install.status == 0, "\(install.stdout)")
            #expect(try lab.exec(host, "gitlab-runner --version | head -n 1").stdout == "Version:      17.8.0\n")
            let runner = try lab.createGitLabRunner()
            try putToken(lab, host, runner.token)

            let untrusted = try register(lab, host, "--url \(lab.gitlabHTTPSURL) --executor docker --docker-image alpine:3.20 --name tls")
            #expect(untrusted.status == 1)
            #expect(untrusted.stderr.contains("x509: certificate signed by unknown authority"), "\(untrusted.stderr)")
            #expect(untrusted.stderr.contains("PANIC: Failed to verify the runner."))

            try lab.copy(lab.caCertificatePath, to: host, at: "/etc/gitlab-runner/certs/lab-ca.crt")
            let trusted = try register(lab, host, "--url \(lab.gitlabHTTPSURL) --tls-ca-file /etc/gitlab-runner/certs/lab-ca.crt --executor docker --docker-image alpine:3.20 --name tls")
            #expect(trusted.status == 0, "\(trusted.stderr)")
            let block = try #require((try config(lab, host)["runners"] as? [[String: Any]])?.first)
            #expect(block["tls-ca-file"] as? String == "/etc/gitlab-runner/certs/lab-ca.crt")
            #expect(try lab.waitForGitLabRunner(id: runner.id, timeout: 8)?["status"] as? String == "online")

            // An admin deletes the runner: its job requests are refused, verify says so and --delete drops the block.
            try lab.deleteGitLabRunner(id: runner.id)
            var journal = ""
            for _ in 0..<40 where !journal.contains("Checking for jobs... forbidden") {
                try await Task.sleep(for: .milliseconds(200))
                journal = try lab.exec(host, "journalctl -u gitlab-runner -o cat").stdout
            }
            #expect(journal.contains("ERROR: Checking for jobs... forbidden"), "\(journal)")
            let verify = try lab.exec(host, "gitlab-runner verify")
            #expect(verify.status == 1 && verify.stderr.contains("ERROR: Verifying runner... is not valid"), "\(verify.stderr)")
            #expect(verify.stderr.contains("FATAL: Failed to verify runners"))
            let deleted = try lab.exec(host, "gitlab-runner verify --delete")
            #expect(deleted.status == 0 && deleted.stderr.contains("Updated /etc/gitlab-runner/config.toml"), "\(deleted.stderr)")
            #expect((try config(lab, host)["runners"] as? [Any] ?? [1]).isEmpty)

            let stopped = try lab.exec(host, "systemctl stop gitlab-runner; gitlab-runner status")
            #expect(stopped.status == 1 && stopped.stderr.hasSuffix("gitlab-runner: Service has stopped\n"), "\(stopped.stderr)")
        }
    }

    @Test func debiansDockerRunsOnAPiHostAndTheRunnerUserMayUseIt() async throws {
        try await withLab(hosts: 1, pi: [1]) { lab in
            let host = lab.hosts[0].name
            #expect(try lab.exec(host, "uname -m; dpkg --print-architecture").stdout == "aarch64\namd64\n")
            let docker = try lab.exec(host, "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io 2>&1")
            #expect(docker.status == 0, "\(docker.stdout)")
            let running = try lab.exec(host, """
                docker version --format '{{.Server.Version}}'; systemctl is-active docker docker.socket containerd
                iptables -S FORWARD | head -n 1; stat -c '%a %G' /run/docker.sock
                """)
            #expect(running.stdout == "20.10.24+dfsg1\nactive\nactive\nactive\n-P FORWARD DROP\n660 docker\n", "\(running.stderr)")

            let install = try installRunner(lab, host, "gitlab-runner=17.7.1-1 gitlab-runner-helper-images=17.7.1-1")
            #expect(install.status == 0, "\(install.stdout)")
            let member = try lab.exec(host, "usermod -aG docker gitlab-runner && id -nG gitlab-runner && su -s /bin/sh gitlab-runner -c \"docker version --format '{{.Server.Version}}'\"")
            #expect(member.stdout == "gitlab-runner docker\n20.10.24+dfsg1\n", "\(member.stderr)")

            // An upgrade brings the helper images along and restarts the service; the postinst warns about the group.
            let upgrade = try lab.exec(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q gitlab-runner 2>&1")
            #expect(upgrade.status == 0, "\(upgrade.stdout)")
            #expect(upgrade.stdout.contains("Setting up gitlab-runner-helper-images (17.8.0-1)"))
            #expect(upgrade.stdout.contains("WARNING: gitlab-runner belongs to group docker which is insecure, because allows to have root access to host"))
            let after = try lab.exec(host, "gitlab-runner --version | head -n 1; systemctl is-active gitlab-runner")
            #expect(after.stdout == "Version:      17.8.0\nactive\n")
            #expect(lab.serviceEvents(host).filter { $0.hasSuffix(" start gitlab-runner.service") }.count == 2)
        }
    }
}
