import Foundation
import Testing
import Facts
import Inventory
import ProvisionBasics
@testable import Steps
import Templates

/// Online install: the host downloads the install script from the inventory's URL, and only when what it has did not
/// come from there; k3s-service then runs it at the pinned version.
@Suite struct K3sInstallScriptStepTests {
    static let mirror = "http://10.0.0.9:8080/k3s/install.sh"
    let script = K3s.installScript

    func inventory(_ k3s: String) throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: "${env:T}"\(k3s)}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent]}
              - {name: r1, address: 10.0.2.1, roles: [runner]}
            gitlab: {url: https://gitlab.example.com, token: glpat-x, runnerPackage: {version: 17.7.1}}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root", "T": "secret-token"])
    }

    func decide(_ inventory: Inventory, _ host: String = "s1", probe: String,
                facts: HostFacts = HostFacts()) throws -> Decision {
        let context = StepContext(host: try #require(inventory.host(named: host)), inventory: inventory, facts: facts,
                                  probe: probe, templates: TemplateSet())
        return try K3sInstallScriptStep().decide(context)
    }

    @Test func aMissingScriptIsDownloadedFromGetK3sIoByDefaultAndItsSourceRecorded() throws {
        let decision = try decide(try inventory(""), probe: "")
        #expect(decision.reason == "\(script) is missing")
        guard decision.actions.count == 2, case .run(let command) = decision.actions[0] else {
            Issue.record("expected a download and a record: \(decision.actions)"); return
        }
        #expect(command.hasPrefix("u=https://get.k3s.io; t=/usr/local/share/provision/.k3s-install.sh.download; "))
        #expect(command.contains("curl -fsSL ") && command.hasSuffix("mv -f \"$t\" \(script)"))
        #expect(decision.actions[1] == .writeFile(path: script + ".url", content: "https://get.k3s.io\n", mode: 0o644,
                                                  owner: "root:root"))
    }

    @Test func aScriptFromTheInventorysURLIsLeftAlone() throws {
        let decision = try decide(try inventory(", installScriptURL: \"\(Self.mirror)\""),
                                  probe: "script\nurl=\(Self.mirror)\n")
        #expect(decision == .ok("\(script) downloaded from \(Self.mirror)"))
    }

    @Test func aChangedURLAMissingRecordOrAReplacedScriptFetchAgain() throws {
        let inventory = try inventory(", installScriptURL: \"\(Self.mirror)\"")
        let moved = try decide(inventory, "a1", probe: "script\nurl=https://get.k3s.io\n")
        #expect(moved.reason == "\(script) came from https://get.k3s.io, the inventory wants \(Self.mirror)")
        #expect(moved.actions.last == .writeFile(path: script + ".url", content: Self.mirror + "\n", mode: 0o644,
                                                 owner: "root:root"))
        let unrecorded = try decide(inventory, probe: "script\n")
        #expect(unrecorded.reason == "\(script) has no record of where it came from")
        // Newer than its record: put there since (an airgap upload, an edit by hand).
        let replaced = try decide(inventory, probe: "script\nreplaced\nurl=\(Self.mirror)\n")
        #expect(replaced.reason == "\(script) was replaced after its download from \(Self.mirror)")
        #expect(replaced.actions.count == 2)
    }

    @Test func onlyOnlineInventoriesGetTheStepAndOnlyK3sHostsNeedIt() throws {
        let online = StepCatalog.steps(for: try inventory("")).map(\.id)
        #expect(online.contains("k3s-install-script") && !online.contains("k3s-assets"))
        #expect(online.firstIndex(of: "k3s-install-script")! < online.firstIndex(of: "k3s-service")!)
        let airgap = StepCatalog.steps(for: try inventory(", airgap: {directory: /srv/k3s}")).map(\.id)
        #expect(airgap.contains("k3s-assets") && !airgap.contains("k3s-install-script"))
        let inventory = try inventory("")
        let step = K3sInstallScriptStep()
        #expect(inventory.hosts.map { step.applies(to: $0, facts: HostFacts()) } == [true, true, false])
    }

    @Test func theServiceRunsTheScriptAtThePinnedVersionPerRoleWithoutTheToken() throws {
        let inventory = try inventory(", installScriptURL: \"\(Self.mirror)\"")
        func command(_ host: String, installed: String?) throws -> String {
            var facts = HostFacts()
            facts.versions.k3s = installed
            let context = StepContext(host: try #require(inventory.host(named: host)), inventory: inventory,
                                      facts: facts, probe: "k3s inactive \nk3s-agent inactive ", templates: TemplateSet())
            guard case .run(let command) = try K3sServiceStep().decide(context).actions.first else {
                Issue.record("no install command"); return ""
            }
            return command
        }
        #expect(try command("s1", installed: nil)
                == "INSTALL_K3S_VERSION=v1.31.4+k3s1 INSTALL_K3S_EXEC=server timeout 300 sh \(script) && rm -f \(K3s.restartPending)")
        let upgrade = try command("a1", installed: "v1.30.2+k3s1")
        #expect(upgrade == "INSTALL_K3S_VERSION=v1.31.4+k3s1 INSTALL_K3S_EXEC=agent INSTALL_K3S_FORCE_RESTART=true "
                + "timeout 300 sh \(script) && rm -f \(K3s.restartPending)")
        #expect(!upgrade.contains("secret-token"))
    }

    // MARK: the download command, run by a real shell against file:// URLs

    /// Runs the step's download command with the script and its partial file under `folder`.
    func download(_ url: String, in folder: String) throws -> (status: Int32, stderr: String) {
        let command = K3sInstallScriptStep.download(url, to: folder + "/k3s-install.sh",
                                                     partial: folder + "/.k3s-install.sh.download")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func theDownloadLandsWholeOrNotAtAllAndAFailureNamesTheURLAndCurlsError() throws {
        let folder = NSTemporaryDirectory() + "k3s-install-script-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder + "/site", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/k3s-install.sh"
        try "#!/bin/sh\necho installing\n".write(toFile: folder + "/site/install.sh", atomically: true, encoding: .utf8)
        try "<html>moved</html>\n".write(toFile: folder + "/site/index.html", atomically: true, encoding: .utf8)

        let good = try download("file://\(folder)/site/install.sh", in: folder)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "#!/bin/sh\necho installing\n")
        let mode = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
        #expect(mode == 0o755)

        let missing = "file://\(folder)/site/nope.sh"
        let failed = try download(missing, in: folder)
        #expect(failed.status == 1)
        let line = failed.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("cannot download the k3s install script from \(missing): curl: (37) "), "\(failed.stderr)")
        let html = try download("file://\(folder)/site/index.html", in: folder)
        #expect(html.status == 1)
        #expect(html.stderr.contains("did not return a shell script (it does not start with #!)"))
        // Neither failure touched the script in place or left a partial file.
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "#!/bin/sh\necho installing\n")
        #expect(!FileManager.default.fileExists(atPath: folder + "/.k3s-install.sh.download"))

        // A URL reaches curl as one word, whatever it holds.
        let odd = folder + "/site/it's $(echo x) `true`.sh"
        try "#!/bin/sh\necho odd\n".write(toFile: odd, atomically: true, encoding: .utf8)
        let quoted = try download("file://" + odd.replacing(" ", with: "%20"), in: folder)
        #expect(quoted.status == 0, "\(quoted.stderr)")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "#!/bin/sh\necho odd\n")
    }
}
