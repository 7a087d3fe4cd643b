import Foundation
import LabSupport
import Testing

/// The k3s stand-in's install script without INSTALL_K3S_SKIP_DOWNLOAD, against the lab's mirror (scripts/lab mirror):
/// it downloads and verifies the release as the real script does, and an online node has its system images.
@Suite(.serialized) struct K3sStandInOnlineTests {
    @discardableResult
    func sh(_ lab: Lab, _ command: String) throws -> String {
        let result = try lab.exec("lab-1", command)
        guard result.status == 0 else { throw LabError.commandFailed(command: command, output: result) }
        return result.stdout
    }

    func installedVersion(_ lab: Lab) throws -> String {
        String(try sh(lab, "k3s --version").split(separator: "\n").first ?? "")
    }

    @Test func theScriptDownloadsThePinnedReleaseVerifiesItAndSkipsWhatIsInstalled() async throws {
        try await withLab(hosts: 1) { lab in
            try lab.mirrorK3s(["v1.31.4+k3s1", "v1.32.5+k3s1"])
            let mirror = lab.k3sMirrorURL
            try sh(lab, "curl -fsSLo /root/install.sh \(mirror)/install.sh")
            let pinned = "INSTALL_K3S_VERSION=v1.31.4+k3s1 INSTALL_K3S_EXEC=server sh /root/install.sh"

            let first = try lab.exec("lab-1", pinned)
            #expect(first.status == 0, "\(first.stdout)\(first.stderr)")
            let release = "\(mirror)/releases/download/v1.31.4+k3s1"
            #expect(first.stdout.hasPrefix("""
                [INFO]  Using v1.31.4+k3s1 as release
                [INFO]  Downloading hash \(release)/sha256sum-amd64.txt
                [INFO]  Downloading binary \(release)/k3s
                [INFO]  Verifying binary download
                [INFO]  Installing k3s to /usr/local/bin/k3s

                """), "\(first.stdout)")
            #expect(first.stdout.hasSuffix("[INFO]  systemd: Starting k3s\n"))
            #expect(try installedVersion(lab).hasPrefix("k3s version v1.31.4+k3s1 ("))
            #expect(try sh(lab, "stat -c '%a %U' /usr/local/bin/k3s; ls -d /tmp/k3s-install.* 2>/dev/null | wc -l") == "755 root\n0\n",
                    "installed 0755, no download left behind")
            // No airgap tarball: the node pulled its system images, as an online node does.
            let images = "k3s kubectl get node lab-1 -o jsonpath='{.status.images[*].names[0]}' 2>/dev/null || true"
            let deadline = Date().addingTimeInterval(20)
            while !(try sh(lab, images)).contains("docker.io/rancher/mirrored-pause:3.6"), Date() < deadline {
                try await Task.sleep(nanoseconds: 200_000_000)
            }
            #expect(try sh(lab, images).contains("docker.io/rancher/mirrored-pause:3.6"))

            // Again: the installed binary has the release's hash, so nothing is downloaded and nothing restarts.
            let events = lab.serviceEvents("lab-1")
            let again = try lab.exec("lab-1", pinned)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("[INFO]  Downloading hash \(release)/sha256sum-amd64.txt\n"
                                          + "[INFO]  Skipping binary downloaded, installed k3s matches hash\n"))
            #expect(!again.stdout.contains("Downloading binary"))
            #expect(again.stdout.hasSuffix("[INFO]  No change detected so skipping service start\n"))
            #expect(lab.serviceEvents("lab-1") == events)

            // Unpinned, the channel names the release (here the mirror's channel): an upgrade, so a restart.
            let channel = try lab.exec("lab-1", "INSTALL_K3S_CHANNEL_URL=\(mirror)/channels INSTALL_K3S_EXEC=server sh /root/install.sh")
            #expect(channel.status == 0, "\(channel.stderr)")
            #expect(channel.stdout.hasPrefix("[INFO]  Finding release for channel stable\n[INFO]  Using v1.32.5+k3s1 as release\n"))
            #expect(channel.stdout.hasSuffix("[INFO]  systemd: Starting k3s\n"))
            #expect(try installedVersion(lab).hasPrefix("k3s version v1.32.5+k3s1 ("))

            // A hash that does not match is refused before the binary is replaced.
            let sumsPath = lab.directory + "/mirror/k3s/releases/download/v1.31.4+k3s1/sha256sum-amd64.txt"
            let sums = try String(contentsOfFile: sumsPath, encoding: .utf8)
            let real = String(sums.prefix(64))
            let forged = (real.first == "0" ? "1" : "0") + real.dropFirst()
            try (forged + sums.dropFirst(64)).write(toFile: sumsPath, atomically: true, encoding: .utf8)
            let mismatch = try lab.exec("lab-1", pinned)
            #expect(mismatch.status == 1)
            #expect(mismatch.stderr == "[ERROR]  Download sha256 does not match \(forged), got \(real)\n")
            #expect(try installedVersion(lab).hasPrefix("k3s version v1.32.5+k3s1 ("))
            try sums.write(toFile: sumsPath, atomically: true, encoding: .utf8)

            // A release the mirror does not have; a host without curl or wget; wget when curl is missing.
            let absent = try lab.exec("lab-1", "INSTALL_K3S_VERSION=v1.30.0+k3s1 INSTALL_K3S_EXEC=server sh /root/install.sh")
            #expect(absent.status == 1 && absent.stderr == "[ERROR]  Download failed\n", "\(absent.stderr)")
            let hide = "mv /usr/bin/curl /usr/bin/curl.off && mv /usr/bin/wget /usr/bin/wget.off"
            let none = try lab.exec("lab-1", "\(hide) && { \(pinned); s=$?; mv /usr/bin/curl.off /usr/bin/curl; mv /usr/bin/wget.off /usr/bin/wget; exit $s; }")
            #expect(none.status == 1 && none.stderr == "[ERROR]  Can not find curl or wget for downloading files\n")
            let withWget = try lab.exec("lab-1", "mv /usr/bin/curl /usr/bin/curl.off && { \(pinned); s=$?; mv /usr/bin/curl.off /usr/bin/curl; exit $s; }")
            #expect(withWget.status == 0, "\(withWget.stderr)")
            #expect(withWget.stdout.contains("[INFO]  Downloading binary \(release)/k3s\n"))
            #expect(try installedVersion(lab).hasPrefix("k3s version v1.31.4+k3s1 ("))
        }
    }
}
