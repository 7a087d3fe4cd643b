import Foundation
import LabSupport
import ProvisionBasics
import Testing

/// plan / apply / resume / lock against lab hosts: what an admin notices on the hosts, in the output and the exit code.
@Suite(.serialized) struct ApplyTests {
    func provision(_ arguments: [String]) throws -> ProcessOutput {
        try run(Repo.provisionBinary, arguments)
    }

    func json(_ output: ProcessOutput) throws -> [String: [String: String]] {
        // host → step → status
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        var result: [String: [String: String]] = [:]
        for host in try #require(object["hosts"] as? [[String: Any]]) {
            let name = try #require(host["name"] as? String)
            var steps: [String: String] = [:]
            for step in host["steps"] as? [[String: Any]] ?? [] {
                steps[step["id"] as? String ?? "?"] = step["status"] as? String
            }
            result[name] = steps
        }
        return result
    }

    func messages(_ output: ProcessOutput, host: String) throws -> [String: String] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let hosts = try #require(object["hosts"] as? [[String: Any]])
        let entry = try #require(hosts.first { $0["name"] as? String == host })
        var result: [String: String] = [:]
        for step in entry["steps"] as? [[String: Any]] ?? [] { result[step["id"] as? String ?? "?"] = step["message"] as? String }
        return result
    }

    /// No temporary file of an interrupted write may remain anywhere provision writes.
    func leftovers(_ lab: Lab, _ host: String) throws -> String {
        try lab.exec(host, "find /etc /boot /root /home -name '.*.provision-*' 2>/dev/null").stdout
    }

    @Test func freshHostsConvergeWithOneRebootAndASecondApplyChangesNothing() async throws {
        try await withLab(hosts: 3, pi: [3]) { lab in
            let first = try provision(["apply", lab.inventoryPath, "--output", "json"])
            #expect(first.status == 0, "\(first.stderr)")
            let statuses = try json(first)
            #expect(statuses["lab-1"] == ["base-packages": "changed", "kernel-forwarding": "changed"])
            #expect(statuses["lab-3"] == ["base-packages": "changed", "pi-cgroups": "changed", "kernel-forwarding": "changed"])
            #expect(lab.reboots("lab-3") == 1)
            #expect(lab.reboots("lab-1") == 0)
            #expect(try lab.exec("lab-3", "awk '$1==\"memory\"{print $4}' /proc/cgroups").stdout == "1\n")
            #expect(try lab.exec("lab-3", "cat /proc/cmdline").stdout.contains("cgroup_memory=1 cgroup_enable=memory"))
            let events = lab.hosts.map { lab.serviceEvents($0.name) }

            let second = try provision(["apply", lab.inventoryPath, "--output", "json"])
            #expect(second.status == 0, "\(second.stderr)")
            for (_, steps) in try json(second) { #expect(steps.values.allSatisfy { $0 == "ok" }) }
            #expect(lab.reboots("lab-3") == 1)
            #expect(lab.hosts.map { lab.serviceEvents($0.name) } == events)  // nothing restarted
            let plan = try provision(["plan", lab.inventoryPath, "--detailed-exitcode"])
            #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
            #expect(plan.stdout.hasSuffix("Plan: nothing to change.\n"))
            for host in lab.hosts { #expect(try leftovers(lab, host.name).isEmpty) }
        }
    }

    @Test func driftIsPlannedAndRepairedExactlyWhereItIs() async throws {
        try await withLab(hosts: 3) { lab in
            #expect(try provision(["apply", lab.inventoryPath]).status == 0)
            _ = try lab.exec("lab-1", "echo 'net.ipv4.ip_forward = 0' >> /etc/sysctl.d/90-provision-k3s.conf")
            _ = try lab.exec("lab-2", "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q iptables >/dev/null 2>&1")
            let plan = try provision(["plan", lab.inventoryPath, "--detailed-exitcode", "--output", "json"])
            #expect(plan.status == 2)
            let pending = try json(plan).flatMap { host, steps in steps.filter { $0.value == "pending" }.map { "\(host) \($0.key)" } }
            #expect(Set(pending) == ["lab-1 kernel-forwarding", "lab-2 base-packages"])
            let repair = try provision(["apply", lab.inventoryPath, "--output", "json"])
            #expect(repair.status == 0)
            let changed = try json(repair).flatMap { host, steps in steps.filter { $0.value == "changed" }.map { "\(host) \($0.key)" } }
            #expect(Set(changed) == ["lab-1 kernel-forwarding", "lab-2 base-packages"])
            #expect(try lab.exec("lab-1", "cat /etc/sysctl.d/90-provision-k3s.conf.provision.bak").stdout.contains("ip_forward = 0"))
            #expect(try provision(["plan", lab.inventoryPath, "--detailed-exitcode"]).status == 0)
        }
    }

    @Test func oneUnreachableHostFailsAloneAndTheSummaryNamesIt() async throws {
        try await withLab(hosts: 2) { lab in
            let inventory = try lab.inventory(unreachable: "lab-2")
            let result = try provision(["apply", inventory])
            #expect(result.status == 1)
            let rows = result.stdout.split(separator: "\n").map(String.init)
            #expect(rows.contains { $0.hasPrefix("lab-1") && $0.hasSuffix("converged") })
            #expect(rows.contains { $0.hasPrefix("lab-2") && $0.contains("FAILED: cannot connect to") })
        }
    }

    @Test func aSecondApplyIsRefusedNamingTheHolderAndAStaleLockIsTakenOver() async throws {
        try await withLab(hosts: 2) { lab in
            let first = try Background(Repo.provisionBinary, ["apply", lab.inventoryPath])
            try first.waitForStderr(containing: "changing:", timeout: 60)
            let second = try provision(["apply", lab.inventoryPath])
            #expect(second.status == 1)
            #expect(second.stderr.contains("pid \(first.pid)"))
            #expect(second.stderr.contains("provision apply"))
            first.kill(SIGKILL)
            let third = try provision(["apply", lab.inventoryPath])
            #expect(third.stderr.contains("pid \(first.pid)") && third.stderr.contains("taking it over"), "\(third.stderr)")
            #expect(third.status == 0, "\(third.stderr)")
        }
    }

    /// kill -9 before, during and after a remote change; each time `apply --resume` finishes the job, re-applies
    /// nothing that had finished and leaves no half-written file.
    @Test(arguments: ["before", "during", "after"])
    func aKilledApplyResumes(point: String) async throws {
        try await withLab(hosts: 2, pi: [2]) { lab in
            let apply = try Background(Repo.provisionBinary, ["apply", lab.inventoryPath])
            switch point {
            case "before": try await Task.sleep(for: .milliseconds(50))
            case "during": try apply.waitForStderr(containing: "pi-cgroups: changing", timeout: 60)
            default: try apply.waitForStderr(containing: "base-packages: changed", timeout: 60)
            }
            apply.kill(SIGKILL)
            let resumed = try provision(["apply", lab.inventoryPath, "--resume", "--output", "json"])
            #expect(resumed.status == 0, "\(point): \(resumed.stderr)")
            if point != "before" { #expect(resumed.stderr.contains("resuming run")) }
            if point == "after" {
                // The host that reported base-packages changed before the kill sees it only re-checked.
                let finished = apply.stderrText.split(separator: "\n").filter { $0.contains("base-packages: changed") }
                for line in finished {
                    let host = String(line.split(separator: ":")[0])
                    #expect(try json(resumed)[host]?["base-packages"] == "ok")
                    #expect(try messages(resumed, host: host)["base-packages"]?.contains("finished in run") == true)
                }
            }
            #expect(lab.reboots("lab-2") == 1, "\(point)")
            for host in lab.hosts { #expect(try leftovers(lab, host.name).isEmpty, "\(point) \(host.name)") }
            #expect(try provision(["plan", lab.inventoryPath, "--detailed-exitcode"]).status == 0)
        }
    }

    /// On a terminal each host has one line that is redrawn in place; elsewhere plain lines with a host prefix.
    @Test func progressIsOneLivingLinePerHostOnATerminal() async throws {
        try await withLab(hosts: 2) { lab in
            let command = ShellQuote.join([Repo.provisionBinary, "apply", lab.inventoryPath])
            let tty = try run("/usr/bin/script", ["-qec", command, "/dev/null"])
            #expect(tty.status == 0, "\(tty.stdout)")
            #expect(tty.stdout.contains("\u{1B}[1A\u{1B}[2K"))          // lines redrawn in place
            #expect(tty.stdout.contains("lab-1  base-packages"))         // the step a host is on
            #expect(tty.stdout.range(of: #"lab-2  \S.*  \d+\.\ds"#, options: .regularExpression) != nil)  // elapsed
            let plain = try run(Repo.provisionBinary, ["apply", lab.inventoryPath])
            #expect(!plain.stderr.contains("\u{1B}["))
            #expect(plain.stderr.contains("lab-1: done: 0 changed, 2 ok, 0 failed"))
        }
    }

    @Test func ctrlCLetsTheRunningCommandFinishAndExits130() async throws {
        try await withLab(hosts: 1) { lab in
            let apply = try Background(Repo.provisionBinary, ["apply", lab.inventoryPath])
            try apply.waitForStderr(containing: "base-packages: changing", timeout: 60)
            apply.kill(SIGINT)
            let status = apply.wait()
            #expect(status == 130, "\(apply.stderrText)")
            #expect(apply.stderrText.contains("interrupted"))
            let status2 = try provision(["status", lab.inventoryPath])
            #expect(status2.stdout.contains("interrupted"), "\(status2.stdout)")
            #expect(try leftovers(lab, "lab-1").isEmpty)
        }
    }
}

/// A process whose stderr can be watched while it runs.
final class Background: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var buffer = ""

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.buffer += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stderrText: String { lock.lock(); defer { lock.unlock() }; return buffer }

    func waitForStderr(containing needle: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderrText.contains(needle) { return }
            if !process.isRunning { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "never saw \(needle): \(stderrText)"])
    }

    func kill(_ signal: Int32) {
        Glibc.kill(process.processIdentifier, signal)
        if signal == SIGKILL { process.waitUntilExit() }
    }

    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}
