import Foundation
import GRDB

/// The journal's tables; a new version of the schema is a new migration, never an edit of an old one.
enum JournalSchema {
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // AUTOINCREMENT: run ids only grow, so the newest run is the highest id even after deletions.
            try db.execute(sql: """
                CREATE TABLE runs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    command TEXT NOT NULL,
                    inventoryPath TEXT NOT NULL,
                    startedAt DATETIME NOT NULL,
                    finishedAt DATETIME,
                    status TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    machine TEXT NOT NULL,
                    resumedFrom INTEGER REFERENCES runs(id)
                );
                CREATE TABLE steps (
                    runId INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                    host TEXT NOT NULL,
                    step TEXT NOT NULL,
                    status TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    startedAt DATETIME,
                    durationMs INTEGER NOT NULL,
                    message TEXT NOT NULL,
                    outputTail TEXT NOT NULL,
                    PRIMARY KEY (runId, host, step)
                );
                CREATE INDEX steps_by_host ON steps (host, step, runId);
                """)
        }
        migrator.registerMigration("v2") { db in
            // Local files' digests (the airgap images): one row per path, replaced when the file is hashed again.
            try db.execute(sql: """
                CREATE TABLE fileDigests (
                    path TEXT PRIMARY KEY NOT NULL,
                    identity TEXT NOT NULL,
                    sha256 TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3") { db in
            // Per host, each versioned program's `stat` identity and the version it printed (no secrets).
            try db.execute(sql: """
                CREATE TABLE hostPrograms (
                    host TEXT NOT NULL,
                    program TEXT NOT NULL,
                    identity TEXT NOT NULL,
                    version TEXT NOT NULL,
                    PRIMARY KEY (host, program)
                );
                """)
        }
        return migrator
    }()
}

/// The journal file is unusable as it is; the message says why and what to do.
public struct JournalError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}

extension RunRecord {
    init(row: Row) throws {
        let status: String = row["status"]
        guard let known = RunStatus(rawValue: status) else {
            throw JournalError("the journal has a run with unknown status '\(status)'; is it from a newer provision?")
        }
        self.init(id: row["id"], command: row["command"], inventoryPath: row["inventoryPath"],
                  startedAt: row["startedAt"], finishedAt: row["finishedAt"], status: known,
                  pid: row["pid"], machine: row["machine"], resumedFrom: row["resumedFrom"])
    }
}

extension StepRecord {
    init(row: Row) throws {
        let status: String = row["status"]
        guard let known = StepStatus(rawValue: status) else {
            throw JournalError("the journal has a step with unknown status '\(status)'; is it from a newer provision?")
        }
        self.init(runId: row["runId"], host: row["host"], step: row["step"], status: known,
                  fingerprint: row["fingerprint"], startedAt: row["startedAt"], durationMs: row["durationMs"],
                  message: row["message"], outputTail: row["outputTail"])
    }
}
