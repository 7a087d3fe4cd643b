import Foundation
import LabSupport
import Testing

/// The lab's services namespace: an HTTP server at 10.250.K.9:8080 that hosts reach on the lab's bridge, serving the
/// k3s mirror that `scripts/lab mirror` fills; `up` again replaces it and `down` ends it with its namespace.
@Suite(.serialized) struct LabServicesTests {
    /// The server's PID from DIR/services/pid ("pid start-time"), or the fake GitLab's from services/gitlab.pid.
    func serverPID(_ lab: Lab, _ record: String = "pid") throws -> Int {
        let text = try String(contentsOfFile: lab.directory + "/services/" + record, encoding: .utf8)
        return try #require(Int(text.split(separator: " ").first ?? ""))
    }

    /// True while PID is a live (not zombie) serve.py (or `program`).
    func serving(_ pid: Int, _ program: String = "serve.py") -> Bool {
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return String(decoding: cmdline, as: UTF8.self).contains(program)
    }

    @Test func hostsFetchTheK3sMirrorFromTheServicesNamespaceWhichEndsWithTheLab() throws {
        let lab = try Lab.up(hosts: 1)
        var down = false
        defer { if !down { try? lab.down() } }
        let host = lab.hosts[0]
        let subnet = host.address.split(separator: ".").prefix(3).joined(separator: ".")
        let id = String(subnet.split(separator: ".")[2])
        #expect(lab.servicesAddress == subnet + ".9")
        #expect(lab.k3sMirrorURL == "http://\(subnet).9:8080/k3s")

        let version = "v1.32.5+k3s1"
        try lab.mirrorK3s([version])
        let mirror = lab.k3sMirrorURL
        let script = try lab.exec(host.name, "curl -fsS \(mirror)/install.sh")
        #expect(script.status == 0, "\(script.stderr)")
        #expect(script.stdout.contains("\nGITHUB_URL=${GITHUB_URL:-\(mirror)/releases}\n"))
        let sums = try String(contentsOfFile: "\(lab.directory)/mirror/k3s/releases/download/\(version)/sha256sum-amd64.txt",
                              encoding: .utf8)
        let binaryHash = try #require(sums.split(separator: "\n").first { $0.hasSuffix("  k3s") }?.prefix(64))
        let fetched = try lab.exec(host.name, "curl -fsS '\(mirror)/releases/download/\(version)/k3s' | sha256sum")
        #expect(fetched.stdout == "\(binaryHash)  -\n", "the binary arrives whole")
        let missing = try lab.exec(host.name, "curl -fsS \(mirror)/releases/download/v1.30.0+k3s1/k3s")
        #expect(missing.status == 22 && missing.stderr.contains("404"), "\(missing.stderr)")
        // As update.k3s.io does, the channel redirects to the release it names.
        let channel = try lab.exec(host.name, "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' \(mirror)/channels/stable")
        #expect(channel.stdout == "302 \(mirror)/releases/tag/\(version)")
        #expect(lab.servicesLog.contains { $0.hasPrefix("\(host.address) \"GET /k3s/install.sh HTTP/") && $0.hasSuffix(" 200 -") },
                "\(lab.servicesLog)")

        // up again in the same DIR: a new server, the old one gone, the mirror kept.
        let first = try serverPID(lab)
        let again = try run(Repo.labScript, ["up", "--dir", lab.directory, "--hosts", "1", "--id", id])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("services 10.250.\(id).9 "))
        let second = try serverPID(lab)
        #expect(second != first && !serving(first) && serving(second))
        let kept = try lab.exec(host.name, "curl -fsS -o /dev/null -w '%{http_code}' '\(mirror)/releases/download/\(version)/k3s'")
        #expect(kept.stdout == "200")

        // The fake GitLab answers hosts in the same namespace, and ends with the lab too.
        let health = try lab.exec(host.name, "curl -fsS \(lab.gitlabURL)/-/fake/health; curl -fsS \(lab.gitlabHTTPSURL)/-/fake/health")
        #expect(health.stdout == #"{"ok":true}"# && health.stderr.contains("SSL certificate problem"), "\(health.stderr)")
        let gitlab = try serverPID(lab, "gitlab.pid")
        #expect(serving(gitlab, "fake-gitlab"))
        try lab.down()
        down = true
        #expect(!serving(second) && !serving(gitlab, "fake-gitlab"))
        #expect(!FileManager.default.fileExists(atPath: lab.directory + "/gitlab-tokens"))
        #expect(!FileManager.default.fileExists(atPath: "/run/netns/pvlab\(id)-services"))
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/pv\(id)s"))
    }

    @Test func theMirrorNeedsARunningLabAndRealReleaseNames() throws {
        let directory = NSTemporaryDirectory() + "lab-no-services-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let idle = try run(Repo.labScript, ["mirror", "--dir", directory, "v1.32.5+k3s1"])
        #expect(idle.status == 1)
        #expect(idle.stderr == "lab: no lab runs in \(directory): run scripts/lab up --dir \(directory) first (the mirror's install.sh names the lab's address)\n")
        let bad = try run(Repo.labScript, ["mirror", "--dir", directory, "1.32.5"])
        #expect(bad.status == 2 && bad.stderr.hasPrefix("lab: mirror: '1.32.5' is not a k3s release such as v1.32.5+k3s1\n"))
    }
}
