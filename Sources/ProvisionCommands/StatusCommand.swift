import ArgumentParser
import Foundation
import Journal
import ProvisionBasics

/// `provision status INVENTORY`: the last known state, from the journal alone — no SSH.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the last run and each host's steps as the journal recorded them, without connecting.",
        discussion: "The journal is <inventory dir>/.provision/<inventory name>.db. It tells what provision "
            + "last did; the hosts themselves may have changed since.")

    @Argument(help: "The inventory file (YAML).")
    var inventory: String

    @Option(help: "table or json.")
    var output: OutputFormat = .table

    /// A mistyped path has no journal either; say that rather than "no runs recorded".
    func validate() throws {
        let journal = JournalLocation.database(forInventory: inventory)
        guard FileManager.default.fileExists(atPath: inventory) || FileManager.default.fileExists(atPath: journal) else {
            throw ValidationError("no inventory at \(inventory)")
        }
    }

    func run() async throws {
        let path = JournalLocation.database(forInventory: inventory)
        let report: StatusReport
        do {
            guard let journal = try Journal.openExisting(path: path), let run = try await journal.lastRun() else {
                switch output {
                case .table: Console.out("no runs recorded for \(inventory) yet\n")
                case .json: Console.out(try StatusReport(inventory: inventory, run: nil, steps: []).json() + "\n")
                }
                return
            }
            report = StatusReport(inventory: inventory, run: run, steps: try await journal.latestSteps())
        } catch let error as JournalError {
            Console.error(error.description)
            throw ExitCode(1)
        }
        switch output {
        case .table: Console.out(report.table())
        case .json: Console.out(try report.json() + "\n")
        }
    }
}

/// The two renderings of what the journal knows.
struct StatusReport {
    let inventory: String
    let run: RunRecord?
    let steps: [StepRecord]

    func table() -> String {
        guard let run else { return "no runs recorded for \(inventory) yet\n" }
        var summary = "last run \(run.id): \(run.command), \(Self.status(of: run)), started \(Timestamp.utc(run.startedAt))"
        if let finished = run.finishedAt {
            summary += ", took \(Self.duration(milliseconds: Int(finished.timeIntervalSince(run.startedAt) * 1000)))"
        }
        if let resumed = run.resumedFrom { summary += ", resumed from run \(resumed)" }
        guard !steps.isEmpty else { return summary + "\nno steps recorded yet\n" }
        let rows = steps.map { step in
            [step.host, step.step, step.status.rawValue, String(step.runId),
             step.startedAt.map(Timestamp.utc) ?? "-",
             step.status == .running || step.status == .pending ? "-" : Self.duration(milliseconds: step.durationMs),
             step.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""]
        }
        return summary + "\n\n"
            + TextTable.render(header: ["HOST", "STEP", "STATUS", "RUN", "WHEN", "DURATION", "MESSAGE"], rows: rows)
    }

    func json() throws -> String {
        let hosts = Dictionary(grouping: steps, by: \.host).sorted { $0.key < $1.key }.map { host, steps in
            JSONHost(name: host, steps: steps.map { step in
                JSONStep(step: step.step, status: step.status.rawValue, run: step.runId, startedAt: step.startedAt,
                         durationMs: step.durationMs, message: step.message, outputTail: step.outputTail)
            })
        }
        let lastRun = run.map { run in
            JSONRun(id: run.id, command: run.command, status: run.status.rawValue, abandoned: run.wasAbandoned,
                    startedAt: run.startedAt, finishedAt: run.finishedAt,
                    durationMs: run.finishedAt.map { Int($0.timeIntervalSince(run.startedAt) * 1000) },
                    resumedFrom: run.resumedFrom, pid: run.pid, machine: run.machine)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(JSONReport(inventory: inventory, lastRun: lastRun, hosts: hosts))
        return String(decoding: data, as: UTF8.self)
    }

    /// A run marked running whose process is gone was killed; say so rather than "running".
    static func status(of run: RunRecord) -> String {
        guard run.status == .running else { return run.status.rawValue }
        return run.wasAbandoned
            ? "killed while running (pid \(run.pid) is gone; apply --resume continues it)"
            : "running (pid \(run.pid) on \(run.machine))"
    }

    static func duration(milliseconds: Int) -> String {
        switch milliseconds {
        case ..<1000: return "\(max(milliseconds, 0))ms"
        case ..<60_000: return String(format: "%.1fs", Double(milliseconds) / 1000)
        case ..<3_600_000: return "\(milliseconds / 60_000)m \(milliseconds / 1000 % 60)s"
        default: return "\(milliseconds / 3_600_000)h \(milliseconds / 60_000 % 60)m"
        }
    }

    struct JSONReport: Encodable {
        let inventory: String
        let lastRun: JSONRun?
        let hosts: [JSONHost]
    }

    struct JSONRun: Encodable {
        let id: Int64
        let command: String
        let status: String
        let abandoned: Bool
        let startedAt: Date
        let finishedAt: Date?
        let durationMs: Int?
        let resumedFrom: Int64?
        let pid: Int32
        let machine: String
    }

    struct JSONHost: Encodable {
        let name: String
        let steps: [JSONStep]
    }

    struct JSONStep: Encodable {
        let step: String
        let status: String
        let run: Int64
        let startedAt: Date?
        let durationMs: Int
        let message: String
        let outputTail: String
    }
}
