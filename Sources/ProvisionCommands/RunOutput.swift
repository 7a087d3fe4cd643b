import ArgumentParser
import Engine
import Foundation
import Journal

/// How plan and apply results are shown: text for people, JSON for pipelines.
enum RunOutput {
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    struct HostJSON: Encodable {
        let name: String
        let steps: [StepJSON]
        let error: String?
        let durationMs: Int
    }

    struct StepJSON: Encodable {
        let id: String
        let status: String
        let message: String
        let durationMs: Int
        let actions: [String]?
    }

    static func json(_ reports: [HostReport], plan: Bool) throws -> String {
        let hosts = reports.map { report in
            HostJSON(name: report.name, steps: report.steps.map {
                StepJSON(id: $0.id, status: $0.status.rawValue, message: $0.message, durationMs: $0.durationMs,
                         actions: plan ? $0.actions : nil)
            }, error: report.error, durationMs: report.durationMs)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(["hosts": hosts]), as: UTF8.self) + "\n"
    }

    /// The end of an apply: one row per host.
    static func summary(_ reports: [HostReport]) -> String {
        let rows = reports.map { report -> [String] in
            [report.name, "\(report.count(.changed))", "\(report.count(.ok))", "\(report.count(.failed))",
             "\(report.count(.skipped) + report.count(.pending))",
             String(format: "%.1fs", Double(report.durationMs) / 1000),
             report.error.map { "FAILED: \($0)" } ?? (report.converged ? "converged" : "NOT converged")]
        }
        return TextTable.render(header: ["HOST", "CHANGED", "OK", "FAILED", "NOT RUN", "DURATION", "RESULT"], rows: rows)
    }

    /// A plan: every host, every step that applies, and for changes what apply would do.
    static func plan(_ reports: [HostReport]) -> String {
        var text = ""
        for report in reports {
            if let error = report.error {
                text += "\(report.name): cannot plan: \(error)\n"
                continue
            }
            let changes = report.count(.pending)
            text += "\(report.name): \(changes == 0 ? "nothing to change" : "\(changes) to change")\n"
            for step in report.steps {
                let mark = step.status == .pending ? "~" : step.status == .ok ? "=" : "!"
                text += "  \(mark) \(step.id): \(step.message)\n"
                for action in step.actions { text += "      \(action)\n" }
            }
        }
        let pending = reports.reduce(0) { $0 + $1.count(.pending) }
        let hosts = reports.filter(\.pendingChanges).count
        text += pending == 0 ? "Plan: nothing to change.\n" : "Plan: \(pending) step(s) to change on \(hosts) host(s).\n"
        return text
    }
}
