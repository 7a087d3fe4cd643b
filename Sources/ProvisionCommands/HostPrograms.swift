import Engine
import Facts
import Journal

/// Between the journal's rows of programs on hosts and the facts' per-host versions.
enum HostPrograms {
    static func byHost(_ rows: [HostProgram]) -> [String: [String: ProgramVersion]] {
        var known: [String: [String: ProgramVersion]] = [:]
        for row in rows { known[row.host, default: [:]][row.program] = ProgramVersion(identity: row.identity, value: row.version) }
        return known
    }

    /// What each host's last read found.
    static func rows(_ reports: [HostReport]) -> [HostProgram] {
        reports.flatMap { report in
            (report.facts?.programs ?? [:]).sorted { $0.key < $1.key }.map {
                HostProgram(host: report.name, program: $0.key, identity: $0.value.identity, version: $0.value.value)
            }
        }
    }
}
