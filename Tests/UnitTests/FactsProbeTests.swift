import Foundation
import ProvisionBasics
import Testing
@testable import Facts

/// Captured output of the facts script → parsed facts (pyinfra style: tests are data).
@Suite struct FactsProbeTests {
    func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/facts/\(name)", withExtension: "txt"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func debianServerWithEverythingInstalled() throws {
        let facts = try FactsProbe.parse(fixture("debian12-amd64"))
        #expect(facts.hostname == "ci-box-1")
        #expect(facts.os == HostFacts.OS(id: "debian", versionId: "12", versionCodename: "bookworm",
                                         prettyName: "Debian GNU/Linux 12 (bookworm)"))
        #expect(facts.arch == "x86_64")
        #expect(facts.dpkgArch == "amd64")
        #expect(facts.board == nil)
        #expect(!facts.isRaspberryPi)
        #expect(facts.memoryBytes == 16_318_940 * 1024)
        #expect(facts.memoryCgroup == true)
        #expect(facts.cgroupVersion == 2)
        #expect(facts.bootId == "3c1f7a0e-5d2b-4c8e-9a41-0b6f2d9e7c15")
        #expect(facts.versions == HostFacts.Versions(k3s: "v1.31.4+k3s1", docker: "20.10.24+dfsg1", gitlabRunner: "17.7.1"))
    }

    @Test func raspberryPiWithoutMemoryCgroup() throws {
        let facts = try FactsProbe.parse(fixture("raspberry-pi-bookworm"))
        #expect(facts.isRaspberryPi)
        #expect(facts.board == "Raspberry Pi 4 Model B Rev 1.5")
        #expect(facts.arch == "aarch64")
        #expect(facts.dpkgArch == "arm64")
        #expect(facts.memoryCgroup == false)
        #expect(facts.kernelCmdline?.contains("cgroup_disable=memory") == true)
        #expect(facts.versions == HostFacts.Versions())
    }

    @Test func oldRaspbianFallsBackToNothingForMissingValues() throws {
        let facts = try FactsProbe.parse(fixture("raspbian-armhf-v1"))
        #expect(facts.os.id == "raspbian")
        #expect(facts.arch == "armv7l")
        #expect(facts.dpkgArch == "armhf")
        #expect(facts.memoryCgroup == nil)  // no /proc/cgroups row and no cgroup v2 controllers: unknown, not false
        #expect(facts.bootId == nil)
    }

    @Test func outputCutShortIsAnError() throws {
        #expect(throws: FactsProbe.ParseError.self) { try FactsProbe.parse(fixture("cut-short")) }
    }

    @Test func versionLinesFromTheRealTools() {
        #expect(FactsProbe.k3sVersion("k3s version v1.32.5+k3s1 (8e8f2a47)") == "v1.32.5+k3s1")
        #expect(FactsProbe.k3sVersion("go version go1.23.8") == nil)
        #expect(FactsProbe.dockerVersion("Docker version 28.2.2, build e6534b4") == "28.2.2")
    }

    @Test func jsonKeepsAbsentValuesAsNull() throws {
        let facts = try FactsProbe.parse(fixture("raspberry-pi-bookworm"))
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(facts)) as? [String: Any])
        let versions = try #require(json["versions"] as? [String: Any])
        #expect(versions["k3s"] is NSNull)
        #expect(json["raspberryPi"] as? Bool == true)
        #expect((json["os"] as? [String: Any])?["versionCodename"] as? String == "bookworm")
    }

    /// The script itself, run by the local sh: it must finish and parse on this Debian machine.
    @Test func scriptRunsUnderPosixSh() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", FactsProbe.script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let facts = try FactsProbe.parse(output)
        #expect(facts.hostname == ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init))
        #expect(facts.kernel != nil)
    }

    /// A later read reuses the version an unchanged program printed, and asks a replaced one again.
    @Test func aKnownProgramIsAskedForItsVersionOnlyWhenItsFileChanged() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("facts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func install(_ version: String) throws {
            let script = "#!/bin/sh\necho asked >> \(folder)/asked\necho 'k3s version \(version) (0123abcd)'\n"
            try script.write(toFile: "\(folder)/new", atomically: false, encoding: .utf8)
            chmod("\(folder)/new", 0o755)
            rename("\(folder)/new", "\(folder)/k3s")
        }
        func read(knowing known: [String: ProgramVersion]) throws -> HostFacts {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", FactsProbe.script(knowing: known)]
            process.environment = ["PATH": "\(folder):/usr/bin:/bin"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return try FactsProbe.parse(output)
        }
        func asked() -> Int {
            ((try? String(contentsOfFile: "\(folder)/asked", encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        try install("v1.31.4+k3s1")
        let first = try read(knowing: [:])
        #expect(first.versions.k3s == "v1.31.4+k3s1")
        #expect(first.programs["k3s"] != nil)
        #expect(asked() == 1)
        let second = try read(knowing: first.programs)
        #expect(second.versions.k3s == "v1.31.4+k3s1")
        #expect(asked() == 1)
        try install("v1.32.5+k3s1")
        let third = try read(knowing: second.programs)
        #expect(third.versions.k3s == "v1.32.5+k3s1")
        #expect(asked() == 2)
        // A version that was never known (the program was missing) is nothing to reuse.
        #expect(try read(knowing: [:]).versions.k3s == "v1.32.5+k3s1")
        #expect(asked() == 3)
    }
}
