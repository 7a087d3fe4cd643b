import Foundation
import LabSupport
import ProvisionBasics
import Testing

/// provision apply builds a k3s cluster on lab hosts (the k3s stand-in in airgap mode), as the procedure does.
@Suite(.serialized) struct K3sApplyTests {
    static let token = "K3sLabToken-\(UUID().uuidString.prefix(8))"

    /// The lab's inventory with an airgap bundle of `version` and the token from the environment.
    func inventory(_ lab: Lab, version: String = "v1.31.4+k3s1") throws -> (String, [String: String]) {
        let bundle = lab.directory + "/bundle-" + version
        let made = try run(Repo.root + "/scripts/lab.d/k3s/make-bundle", [bundle, version])
        #expect(made.status == 0, "\(made.stderr)")
        var text = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "\nhosts:\n", with: """

            k3s: {version: \(version), token: "${env:LAB_K3S_TOKEN}", airgap: {directory: \(bundle)}}
            hosts:

            """)
        let path = lab.directory + "/k3s.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["LAB_K3S_TOKEN"] = Self.token
        return (path, environment)
    }

    func nodes(_ lab: Lab) throws -> [String: String] {
        let out = try lab.exec("lab-1", "k3s kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}'")
        var result: [String: String] = [:]
        for line in out.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=")
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    @Test func oneServerAndTwoAgentsOneAPiConvergeOnceAndStayPut() async throws {
        try await withLab(hosts: 3, pi: [3]) { lab in
            let (path, environment) = try inventory(lab)
            // Sample every process's argv on every host while apply runs (real processes, so blocked test threads
            // cannot delay them): the token must never be there.
            let sample = "for i in $(seq 1 400); do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; sleep 0.05; done"
            let watchers = try lab.hosts.map { host in
                try Background("/bin/sh", ["-c", "\(ShellQuote.join([Repo.root + "/scripts/lab", "exec", "--dir", lab.directory, host.name, "--", "sh", "-c", sample])) > \(lab.directory)/argv-\(host.name).txt"])
            }
            let first = try run(Repo.provisionBinary, ["apply", path, "-v"], environment: environment)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            #expect(try nodes(lab) == ["lab-1": "True", "lab-2": "True", "lab-3": "True"])
            #expect(lab.reboots("lab-3") == 1)
            for (watcher, host) in zip(watchers, lab.hosts) {
                _ = watcher.wait()
                let seen = try String(contentsOfFile: "\(lab.directory)/argv-\(host.name).txt", encoding: .utf8)
                #expect(seen.contains("k3s"), "the sampling saw the install running on \(host.name)")
                #expect(!seen.contains(Self.token))
            }
            #expect(!first.stdout.contains(Self.token) && !first.stderr.contains(Self.token))
            let mode = try lab.exec("lab-2", "stat -c '%a %U' /etc/rancher/k3s/config.yaml").stdout
            #expect(mode == "600 root\n")

            // A k3s first on PATH that notes each time it is asked for its version: the next apply asks it once (a
            // program it has not seen), the one after that not at all (the journal keeps what was found).
            _ = try lab.exec("lab-2", """
                printf '#!/bin/sh\\n[ "$1" = --version ] && echo asked >> /var/tmp/k3s-asked\\nexec /usr/local/bin/k3s "$@"\\n' \\
                  > /usr/local/sbin/k3s && chmod 755 /usr/local/sbin/k3s
                """)
            #expect(try run(Repo.provisionBinary, ["apply", path], environment: environment).status == 0)
            #expect(try lab.exec("lab-2", "cat /var/tmp/k3s-asked").stdout == "asked\n")

            let events = lab.hosts.map { lab.serviceEvents($0.name) }
            let second = try run(Repo.provisionBinary, ["apply", path, "--output", "json"], environment: environment)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(!second.stdout.contains("\"changed\""), "\(second.stdout)")
            #expect(lab.hosts.map { lab.serviceEvents($0.name) } == events)   // no k3s (or other) restart
            #expect(try lab.exec("lab-2", "cat /var/tmp/k3s-asked").stdout == "asked\n")
            #expect(lab.reboots("lab-3") == 1)

            // The journal keeps no token either.
            let journal = lab.directory + "/.provision"
            for file in try FileManager.default.contentsOfDirectory(atPath: journal) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: journal + "/" + file))
                #expect(bytes.range(of: Data(Self.token.utf8)) == nil, "\(file)")
            }
        }
    }

    @Test func aChangedLabelRewritesConfigAndRestartsOnlyThatNode() async throws {
        try await withLab(hosts: 2) { lab in
            let (path, environment) = try inventory(lab)
            #expect(try run(Repo.provisionBinary, ["apply", path], environment: environment).status == 0)
            let before = lab.hosts.map { lab.serviceEvents($0.name) }
            var text = try String(contentsOfFile: path, encoding: .utf8)
            text = text.replacingOccurrences(of: "roles: [agent]}", with: "roles: [agent], labels: {disk: ssd}}")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try run(Repo.provisionBinary, ["apply", path, "--output", "json"], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(lab.serviceEvents("lab-1") == before[0])
            let restarted = lab.serviceEvents("lab-2").dropFirst(before[1].count)
            #expect(restarted.count == 1 && restarted.first?.contains("restart k3s-agent.service") == true, "\(restarted)")
            let labels = try lab.exec("lab-1", "k3s kubectl get node lab-2 -o jsonpath='{.metadata.labels.disk}'").stdout
            #expect(labels == "ssd")
        }
    }

    /// The assets' digests are read from the cache k3s-assets wrote when it placed them, as long as `stat` says the
    /// file is the one hashed: a cache entry that lies is believed (so the probe really reads the cache instead of
    /// hashing), and a file rewritten behind provision's back is found even with its size and mtime put back.
    @Test func assetDigestsComeFromTheCacheUntilTheFileIsTouched() async throws {
        try await withLab(hosts: 1) { lab in
            let (path, environment) = try inventory(lab)
            #expect(try run(Repo.provisionBinary, ["apply", path], environment: environment).status == 0)
            let images = "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst"
            let cache = try lab.exec("lab-1", "cat /var/lib/provision/k3s-assets.sha256").stdout
            #expect(cache.split(separator: "\n").map { $0.split(separator: " ").last.map(String.init) }
                    == ["/usr/local/share/provision/k3s-install.sh", "/usr/local/bin/k3s", images], "\(cache)")
            func plan() throws -> (Int32, String) {
                let result = try run(Repo.provisionBinary, ["plan", path, "--detailed-exitcode"], environment: environment)
                return (result.status, result.stdout)
            }
            #expect(try plan().0 == 0)

            // A wrong digest for an untouched file: believed, so the plan wants to send the file again.
            let lie = "c=/var/lib/provision/k3s-assets.sha256; awk '$NF == \"/usr/local/bin/k3s\" { $1 = \"\(String(repeating: "0", count: 64))\" } { print }' $c > $c.t && mv $c.t $c"
            #expect(try lab.exec("lab-1", lie).status == 0)
            var (status, out) = try plan()
            #expect(status == 2 && out.contains("/usr/local/bin/k3s missing or different"), "\(out)")
            #expect(try lab.exec("lab-1", "printf '%s' \(ShellQuote.quote(cache)) > /var/lib/provision/k3s-assets.sha256").status == 0)
            #expect(try plan().0 == 0)

            // One byte rewritten in place, size and mtime restored: ctime moved, so the file is hashed and found.
            let tamper = "touch -r \(images) /tmp/mtime && printf 'X' | dd of=\(images) bs=1 count=1 conv=notrunc 2>/dev/null && touch -r /tmp/mtime \(images)"
            #expect(try lab.exec("lab-1", tamper).status == 0)
            (status, out) = try plan()
            #expect(status == 2 && out.contains("\(images) missing or different"), "\(out)")
            #expect(try run(Repo.provisionBinary, ["apply", path], environment: environment).status == 0)
            #expect(try plan().0 == 0)
        }
    }
}
