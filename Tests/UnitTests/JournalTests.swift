import Foundation
import ProvisionBasics
import Testing
@testable import Journal

@Suite struct JournalLocationTests {
    @Test func theJournalLivesBesideTheInventory() {
        #expect(JournalLocation.database(forInventory: "/srv/labs/lab.yaml") == "/srv/labs/.provision/lab.db")
        #expect(JournalLocation.lock(forInventory: "/srv/labs/lab.yaml") == "/srv/labs/.provision/lab.lock")
        #expect(JournalLocation.database(forInventory: "lab.yml") == ".provision/lab.db")
        #expect(JournalLocation.lock(forInventory: "inventories/home.lab.yaml") == "inventories/.provision/home.lab.lock")
    }

    @Test func timestampsAreShownInUTCToTheSecond() {
        #expect(Timestamp.utc(Date(timeIntervalSince1970: 1_795_559_467.8)) == "2026-11-24 22:31:07 UTC")
    }
}

@Suite struct JournalTests {
    let folder: TemporaryFolder
    let path: String

    init() throws {
        folder = try TemporaryFolder()
        path = JournalLocation.database(forInventory: folder.inventory)
    }

    func step(_ runId: Int64, _ host: String, _ step: String, _ status: StepStatus,
              message: String = "", output: String = "") -> StepRecord {
        StepRecord(runId: runId, host: host, step: step, status: status, fingerprint: "fp-\(step)",
                   startedAt: Date(timeIntervalSince1970: 1_795_559_467), durationMs: 1200,
                   message: message, outputTail: output)
    }

    @Test func fileDigestsAreKeptAcrossOpensOneRowPerPath() async throws {
        let first = try Journal.open(path: path, redactor: .none)
        #expect(try await first.fileDigests() == [])
        try await first.keep([FileDigest(path: "/srv/airgap/images", identity: "1 2 3", sha256: "aa"),
                              FileDigest(path: "/srv/airgap/k3s", identity: "1 4 5", sha256: "bb")])
        try await first.keep([FileDigest(path: "/srv/airgap/images", identity: "1 9 3", sha256: "cc")])
        let again = try Journal.open(path: path, redactor: .none)
        #expect(try await again.fileDigests() == [FileDigest(path: "/srv/airgap/images", identity: "1 9 3", sha256: "cc"),
                                                 FileDigest(path: "/srv/airgap/k3s", identity: "1 4 5", sha256: "bb")])
    }

    @Test func programsOnHostsAreReplacedPerHostOnly() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        try await journal.keep(programs: ["a": ["k3s": ProgramVersion(identity: "1 2", value: "k3s version v1"),
                                                "docker": ProgramVersion(identity: "1 3", value: "Docker 27")],
                                          "b": ["k3s": ProgramVersion(identity: "1 4", value: "k3s version v1")]])
        // Host a was read again and has no Docker any more; host b was not reached this time and keeps its row.
        try await journal.keep(programs: ["a": ["k3s": ProgramVersion(identity: "1 5", value: "k3s version v2")]])
        #expect(try await journal.hostPrograms() == ["a": ["k3s": ProgramVersion(identity: "1 5", value: "k3s version v2")],
                                                     "b": ["k3s": ProgramVersion(identity: "1 4", value: "k3s version v1")]])
    }

    @Test func openCreatesAnOwnerOnlyFolderAndDatabase() throws {
        _ = try Journal.open(path: path, redactor: .none)
        #expect(try permissions(folder.path + "/.provision") == 0o700)
        #expect(try permissions(path) == 0o600)
    }

    @Test func aRunIsRememberedFromBeginToFinish() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let begun = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        #expect(begun.status == .running)
        #expect(begun.pid == getpid())
        #expect(begun.finishedAt == nil)
        #expect(try await journal.run(begun.id) == begun)

        try await journal.finishRun(begun.id, status: .failed)
        let finished = try #require(try await journal.run(begun.id))
        #expect(finished.status == .failed)
        #expect(try #require(finished.finishedAt) >= begun.startedAt)
        #expect(try await journal.run(begun.id + 1) == nil)
        await #expect(throws: JournalError.self) { try await journal.finishRun(99, status: .succeeded) }
    }

    @Test func lastRunIsTheNewestOptionallyOfOneCommand() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        #expect(try await journal.lastRun() == nil)
        let apply = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        let plan = try await journal.beginRun(command: "plan", inventoryPath: folder.inventory)
        #expect(try await journal.lastRun()?.id == plan.id)
        #expect(try await journal.lastRun(command: "apply")?.id == apply.id)
        #expect(try await journal.lastRun(command: "destroy") == nil)
    }

    @Test func recordingAStepAgainReplacesIt() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let run = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(run.id, "node1", "docker", .running))
        try await journal.record(step(run.id, "node1", "k3s-agent", .pending))
        try await journal.record(step(run.id, "node1", "docker", .changed, message: "installed 27.3"))
        let steps = try await journal.steps(ofRun: run.id)
        #expect(steps == [step(run.id, "node1", "docker", .changed, message: "installed 27.3"),
                          step(run.id, "node1", "k3s-agent", .pending)])
    }

    @Test func secretsNeverReachTheDatabaseFiles() async throws {
        let secret = "glrt-s3cret-registration-token"
        let journal = try Journal.open(path: path, redactor: Redactor(secrets: [secret]))
        let run = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(run.id, "ci", "runner-registration", .failed,
                                      message: "register --token \(secret) failed",
                                      output: "POST /runners token=\(secret)\n403 Forbidden\n"))
        let stored = try #require(try await journal.steps(ofRun: run.id).first)
        #expect(stored.message == "register --token [REDACTED] failed")
        #expect(stored.outputTail == "POST /runners token=[REDACTED]\n403 Forbidden\n")

        // The WAL holds the newest writes while the journal is open, so read every file in the folder.
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path + "/.provision")
        #expect(files.contains { $0.hasSuffix("-wal") })
        for file in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: folder.path + "/.provision/" + file))
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) contains the secret")
        }
    }

    @Test func onlyTheLastFourKiBOfOutputAreKept() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let run = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        let output = (1...2000).map { "line \($0) é\n" }.joined()
        try await journal.record(step(run.id, "node1", "docker", .failed, output: output))
        let tail = try #require(try await journal.steps(ofRun: run.id).first).outputTail
        #expect(tail.utf8.count <= 4096)
        #expect(tail.utf8.count > 4090)
        #expect(output.hasSuffix(tail))
        #expect(tail.hasSuffix("line 2000 é\n"))
    }

    @Test func resumeContinuesTheNewestApplyThatDidNotSucceed() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        #expect(try await journal.resumableRun() == nil)
        let failed = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.finishRun(failed.id, status: .failed)
        #expect(try await journal.resumableRun()?.id == failed.id)

        // A plan in between, and the caller's own run in progress, are looked past.
        let plan = try await journal.beginRun(command: "plan", inventoryPath: folder.inventory)
        try await journal.finishRun(plan.id, status: .failed)
        let current = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: failed.id)
        #expect(try await journal.resumableRun()?.id == failed.id)

        try await journal.finishRun(current.id, status: .interrupted)
        #expect(try await journal.resumableRun()?.id == current.id)

        let fixed = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: current.id)
        try await journal.finishRun(fixed.id, status: .succeeded)
        #expect(try await journal.resumableRun() == nil)
    }

    @Test func aRunLeftRunningByADeadProcessIsResumable() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let killed = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: nil,
                                                pid: try exitedProcessID(), machine: Machine.name)
        #expect(killed.status == .running)
        #expect(killed.wasAbandoned)
        #expect(try await journal.resumableRun() == killed)

        // On another machine the pid cannot be checked, so such a run counts as alive.
        let elsewhere = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: nil,
                                                   pid: try exitedProcessID(), machine: "not-" + Machine.name)
        #expect(!elsewhere.wasAbandoned)
        #expect(try await journal.resumableRun() == killed)
    }

    @Test func resumeTrustsCompletedStepsAcrossTheChainUnlessRetriedSince() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let first = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(first.id, "node1", "docker", .changed))
        try await journal.record(step(first.id, "node1", "k3s-agent", .ok))
        try await journal.record(step(first.id, "node2", "docker", .failed))
        try await journal.finishRun(first.id, status: .failed)

        let second = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: first.id)
        try await journal.record(step(second.id, "node1", "docker", .skipped))
        try await journal.record(step(second.id, "node1", "k3s-agent", .running))
        try await journal.record(step(second.id, "node2", "docker", .ok))
        try await journal.finishRun(second.id, status: .interrupted)

        let third = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory, resumedFrom: second.id)
        let unrelated = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(unrelated.id, "node3", "docker", .ok))

        let trusted = try await journal.completedSteps(inRunChain: third.id)
        #expect(trusted.map { "\($0.runId) \($0.host) \($0.step)" } == [
            "\(second.id) node2 docker",
            "\(first.id) node1 docker",
        ])
    }

    @Test func latestStepsShowsTheNewestRecordOfEachHostStep() async throws {
        let journal = try Journal.open(path: path, redactor: .none)
        let first = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(first.id, "node2", "docker", .changed))
        try await journal.record(step(first.id, "node1", "docker", .ok))
        try await journal.record(step(first.id, "node1", "k3s-agent", .failed))
        let second = try await journal.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await journal.record(step(second.id, "node1", "k3s-agent", .changed))

        let latest = try await journal.latestSteps()
        #expect(latest.map { "\($0.host) \($0.step) \($0.status.rawValue) \($0.runId)" } == [
            "node1 docker ok \(first.id)",
            "node1 k3s-agent changed \(second.id)",
            "node2 docker changed \(first.id)",
        ])

        try await journal.forget(host: "node1")
        #expect(try await journal.latestSteps().map(\.host) == ["node2"])
        #expect(try await journal.steps(ofRun: second.id).isEmpty)
        #expect(try await journal.run(second.id) != nil)
    }

    @Test func statusOpensReadOnlyAndOnlyWhenThereIsAJournal() async throws {
        #expect(try Journal.openExisting(path: path) == nil)
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/.provision"))

        let writer = try Journal.open(path: path, redactor: .none)
        let run = try await writer.beginRun(command: "apply", inventoryPath: folder.inventory)
        try await writer.record(step(run.id, "node1", "docker", .changed))

        let reader = try #require(try Journal.openExisting(path: path))
        #expect(try await reader.lastRun() == run)
        #expect(try await reader.latestSteps().count == 1)
        await #expect(throws: (any Error).self) { _ = try await reader.beginRun(command: "apply", inventoryPath: "x") }
    }

    @Test func aFirstOpenKilledBeforeTheSchemaLooksLikeNoJournal() throws {
        try FileManager.default.createDirectory(atPath: folder.path + "/.provision", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        #expect(try Journal.openExisting(path: path) == nil)
        _ = try Journal.open(path: path, redactor: .none)
    }

    /// A writer killed with -9 halfway through a transaction leaves the journal as of its last commit.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3"), "needs the sqlite3 CLI"))
    func aWriterKilledMidTransactionLeavesTheLastCommit() async throws {
        _ = try Journal.open(path: path, redactor: .none)  // creates the schema, then closes
        let ready = folder.path + "/ready"

        // sh execs sqlite3, so the pid we see is the writer's: it records its own run, like an apply would.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/bin/sh")
        writer.arguments = ["-c", "exec /usr/bin/sqlite3 \"$1\"", "sh", path]
        let input = Pipe()
        writer.standardInput = input
        writer.standardOutput = FileHandle.nullDevice
        writer.standardError = FileHandle.nullDevice
        try writer.run()
        let pid = writer.processIdentifier
        let script = """
            INSERT INTO runs (command, inventoryPath, startedAt, status, pid, machine)
                VALUES ('apply', 'lab.yaml', '2026-11-24 22:31:07.000', 'running', \(pid), '\(Machine.name)');
            INSERT INTO steps VALUES ((SELECT max(id) FROM runs), 'node1', 'docker', 'changed', 'fp', NULL, 5, '', '');
            PRAGMA cache_size = 1;
            BEGIN;
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                INSERT INTO steps SELECT (SELECT max(id) FROM runs), 'bulk' || i, 'docker', 'ok', 'fp', NULL, 5, '',
                    printf('%.2000c', 'x') FROM n;
            UPDATE runs SET status = 'succeeded';
            .system touch \(ready)

            """
        input.fileHandleForWriting.write(Data(script.utf8))
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: ready) {
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(FileManager.default.fileExists(atPath: ready), "the writer never reached its open transaction")
        // The uncommitted rows overflowed the one-page cache into the WAL: recovery must ignore them.
        let wal = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
        #expect(wal > 1_000_000)
        kill(pid, SIGKILL)
        writer.waitUntilExit()
        #expect(writer.terminationReason == .uncaughtSignal)

        let journal = try Journal.open(path: path, redactor: .none)
        let run = try #require(try await journal.resumableRun())
        #expect(run.pid == pid)
        #expect(run.status == .running)
        #expect(try await journal.steps(ofRun: run.id).map(\.host) == ["node1"])
    }
}
