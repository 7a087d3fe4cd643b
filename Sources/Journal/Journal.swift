import Foundation
import GRDB
import ProvisionBasics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every run and every step it took, in SQLite beside the inventory: what `apply --resume` continues
/// and what `status` shows without SSH. Each write is one transaction in WAL mode, so a kill -9 at any
/// moment leaves the last committed state.
public actor Journal {
    /// How much of a step's output is kept: enough to see why it failed.
    static let outputTailLimit = 4096

    private let database: DatabaseQueue
    private let redactor: Redactor

    private init(database: DatabaseQueue, redactor: Redactor) {
        self.database = database
        self.redactor = redactor
    }

    /// Creates the folder (0700) and database (0600) when missing; migrates the schema.
    public static func open(path: String, redactor: Redactor) throws -> Journal {
        close(try PrivateFiles.open(path, flags: O_RDONLY))
        var configuration = Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(10)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        if try database.read({ try JournalSchema.migrator.hasBeenSuperseded($0) }) {
            throw JournalError("\(path) was written by a newer provision; use that version")
        }
        try JournalSchema.migrator.migrate(database)
        return Journal(database: database, redactor: redactor)
    }

    /// Read-only open for `status`; nil when no database exists.
    public static func openExisting(path: String) throws -> Journal? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        let database = try DatabaseQueue(path: path, configuration: configuration)
        let migrator = JournalSchema.migrator
        let (applied, complete, superseded) = try database.read { db in
            (try migrator.appliedIdentifiers(db), try migrator.hasCompletedMigrations(db), try migrator.hasBeenSuperseded(db))
        }
        // An empty file is a first open that was killed before it could create the tables.
        if applied.isEmpty { return nil }
        if superseded { throw JournalError("\(path) was written by a newer provision; use that version") }
        if !complete { throw JournalError("\(path) was written by an older provision; any apply will upgrade it") }
        return Journal(database: database, redactor: .none)
    }

    // MARK: Runs

    public func beginRun(command: String, inventoryPath: String, resumedFrom: Int64? = nil) throws -> RunRecord {
        try beginRun(command: command, inventoryPath: inventoryPath, resumedFrom: resumedFrom,
                     pid: Machine.pid, machine: Machine.name)
    }

    /// Tests name another process here to play one that was killed.
    func beginRun(command: String, inventoryPath: String, resumedFrom: Int64?,
                  pid: Int32, machine: String) throws -> RunRecord {
        try database.write { db in
            // RETURNING gives back the row as stored, so the record equals what later reads return.
            let row = try Row.fetchOne(db, sql: """
                INSERT INTO runs (command, inventoryPath, startedAt, status, pid, machine, resumedFrom)
                VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *
                """, arguments: [command, inventoryPath, Date(), RunStatus.running.rawValue, pid, machine, resumedFrom])
            guard let row else { throw JournalError("the journal did not store the new run") }
            return try RunRecord(row: row)
        }
    }

    public func finishRun(_ id: Int64, status: RunStatus) throws {
        try database.write { db in
            try db.execute(sql: "UPDATE runs SET status = ?, finishedAt = ? WHERE id = ?",
                           arguments: [status.rawValue, Date(), id])
            if db.changesCount == 0 { throw JournalError("the journal has no run \(id)") }
        }
    }

    public func run(_ id: Int64) throws -> RunRecord? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]).map(RunRecord.init(row:))
        }
    }

    public func lastRun(command: String? = nil) throws -> RunRecord? {
        try database.read { db in
            let row = if let command {
                try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE command = ? ORDER BY id DESC LIMIT 1",
                                 arguments: [command])
            } else {
                try Row.fetchOne(db, sql: "SELECT * FROM runs ORDER BY id DESC LIMIT 1")
            }
            return try row.map(RunRecord.init(row:))
        }
    }

    /// The newest apply that did not succeed: failed, interrupted, or still "running" though its pid is gone
    /// (killed with -9) — what `apply --resume` continues.
    public func resumableRun(command: String = "apply") throws -> RunRecord? {
        try database.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM runs WHERE command = ? ORDER BY id DESC",
                                           arguments: [command])
            while let row = try rows.next() {
                let run = try RunRecord(row: row)
                // A run still in progress (the caller's own, once begun) is not the one to resume; look past it.
                if run.status == .running && !run.wasAbandoned { continue }
                return run.status == .succeeded ? nil : run
            }
            return nil
        }
    }

    // MARK: Local file digests

    /// The digests of local files kept by earlier runs.
    public func fileDigests() throws -> [FileDigest] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT path, identity, sha256 FROM fileDigests ORDER BY path").map {
                FileDigest(path: $0["path"], identity: $0["identity"], sha256: $0["sha256"])
            }
        }
    }

    /// Keeps `digests` (one transaction), replacing what was kept for the same paths.
    public func keep(_ digests: [FileDigest]) throws {
        guard !digests.isEmpty else { return }
        try database.write { db in
            for digest in digests {
                try db.execute(sql: "INSERT OR REPLACE INTO fileDigests (path, identity, sha256) VALUES (?, ?, ?)",
                               arguments: [digest.path, digest.identity, digest.sha256])
            }
        }
    }

    // MARK: Programs on hosts

    /// What the facts script last found of each host's versioned programs (k3s, Docker, gitlab-runner), by host
    /// and facts key.
    public func hostPrograms() throws -> [String: [String: ProgramVersion]] {
        try database.read { db in
            var known: [String: [String: ProgramVersion]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT host, program, identity, version FROM hostPrograms") {
                known[row["host"], default: [:]][row["program"]] = ProgramVersion(identity: row["identity"], value: row["version"])
            }
            return known
        }
    }

    /// Replaces what is kept for each host of `programs` with its programs there (one transaction); other hosts
    /// keep theirs.
    public func keep(programs: [String: [String: ProgramVersion]]) throws {
        guard !programs.isEmpty else { return }
        try database.write { db in
            for (host, found) in programs {
                try db.execute(sql: "DELETE FROM hostPrograms WHERE host = ?", arguments: [host])
                for (program, version) in found {
                    try db.execute(sql: "INSERT INTO hostPrograms (host, program, identity, version) VALUES (?, ?, ?, ?)",
                                   arguments: [host, program, version.identity, version.value])
                }
            }
        }
    }

    // MARK: Steps

    /// Inserts or replaces the record of (runId, host, step); message and output are redacted first.
    public func record(_ step: StepRecord) throws {
        let message = redactor.redact(step.message)
        // Redact before cutting, so the cut cannot split a secret into a part the redactor no longer sees.
        let tail = Self.suffix(of: redactor.redact(step.outputTail), maxBytes: Self.outputTailLimit)
        try database.write { db in
            // An upsert keeps the row's first rowid, so steps list in the order they were first recorded.
            try db.execute(sql: """
                INSERT INTO steps (runId, host, step, status, fingerprint, startedAt, durationMs, message, outputTail)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (runId, host, step) DO UPDATE SET
                    status = excluded.status, fingerprint = excluded.fingerprint, startedAt = excluded.startedAt,
                    durationMs = excluded.durationMs, message = excluded.message, outputTail = excluded.outputTail
                """, arguments: [step.runId, step.host, step.step, step.status.rawValue, step.fingerprint,
                                 step.startedAt, step.durationMs, message, tail])
        }
    }

    public func steps(ofRun id: Int64) throws -> [StepRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM steps WHERE runId = ? ORDER BY host, rowid", arguments: [id])
                .map(StepRecord.init(row:))
        }
    }

    /// Per (host, step), the newest record across all runs; hosts by name, steps in the order first recorded.
    public func latestSteps() throws -> [StepRecord] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT steps.* FROM steps
                JOIN (SELECT host, step, MAX(runId) AS runId, MIN(rowid) AS firstSeen FROM steps GROUP BY host, step)
                    AS latest USING (host, step, runId)
                ORDER BY steps.host, latest.firstSeen
                """).map(StepRecord.init(row:))
        }
    }

    /// Steps that finished (changed or ok) in `run` and in the runs it resumed from, newest first — what
    /// resume may trust. A later attempt of the same step (running or failed) voids an earlier success.
    public func completedSteps(inRunChain id: Int64) throws -> [StepRecord] {
        let attempts = try database.read { db in
            // UNION (not UNION ALL) drops repeats, so even a corrupt cycle of resumedFrom ends.
            try Row.fetchAll(db, sql: """
                WITH RECURSIVE chain(id) AS (
                    SELECT ? UNION SELECT runs.resumedFrom FROM runs JOIN chain ON runs.id = chain.id
                    WHERE runs.resumedFrom IS NOT NULL
                )
                SELECT * FROM steps WHERE runId IN chain AND status IN ('running', 'changed', 'ok', 'failed')
                ORDER BY runId DESC, rowid DESC
                """, arguments: [id]).map(StepRecord.init(row:))
        }
        var seen = Set<[String]>()
        return attempts.filter { seen.insert([$0.host, $0.step]).inserted && $0.status.isCompleted }
    }

    /// Drops every step record of a host (e.g. one rebuilt from scratch); its runs stay.
    public func forget(host: String) throws {
        try database.write { db in
            try db.execute(sql: "DELETE FROM steps WHERE host = ?", arguments: [host])
        }
    }

    // MARK: Helpers

    /// The last `maxBytes` of UTF-8, starting on a character boundary.
    static func suffix(of text: String, maxBytes: Int) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > maxBytes else { return text }
        var start = bytes.count - maxBytes
        while start < bytes.count && bytes[start] & 0b1100_0000 == 0b1000_0000 { start += 1 }
        return String(decoding: bytes[start...], as: UTF8.self)
    }
}
