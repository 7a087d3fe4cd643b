import ArgumentParser
import Engine
import Facts
import Foundation
import Inventory
import ProvisionBasics

/// `provision facts INVENTORY`: what every host is, one SSH round trip per host, all hosts in parallel.
struct FactsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "Show each host's OS, architecture, board, memory, cgroups, boot id and installed versions.")

    @OptionGroup var options: HostOptions

    @Option(help: "table or json.")
    var output: OutputFormat = .table

    @Flag(help: .hidden)
    var printScript = false

    func run() async throws {
        if printScript {
            Console.out(FactsProbe.script + "\n")
            return
        }
        let inventory = try options.loadInventory()
        let fleet = Fleet(inventory: inventory, parallel: options.parallel, logger: options.logger(redacting: inventory))
        let outcomes = await fleet.forEach(try options.selectedHosts(in: inventory)) { _, connection in
            try await FactsProbe.gather(on: connection)
        }
        await fleet.close()
        switch output {
        case .json: Console.out(try FactsReport.json(outcomes) + "\n")
        case .table: Console.out(FactsReport.table(outcomes))
        }
        let failures = outcomes.compactMap { outcome -> HostFailure? in
            if case .failure(let failure) = outcome.result { return failure }
            return nil
        }
        for failure in failures { Console.error(failure.message) }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// The two renderings of a facts run.
enum FactsReport {
    struct Entry: Encodable {
        let name: String
        let facts: HostFacts?
        let error: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(name, forKey: Key("name"))
            if let facts { try facts.encode(to: encoder) }
            if let error { try container.encode(error, forKey: Key("error")) }
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ value: String) { stringValue = value }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func json(_ outcomes: [HostOutcome<HostFacts>]) throws -> String {
        let entries = outcomes.map { outcome -> Entry in
            switch outcome.result {
            case .success(let facts): Entry(name: outcome.host.name, facts: facts, error: nil)
            case .failure(let failure): Entry(name: outcome.host.name, facts: nil, error: failure.message)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(["hosts": entries]), as: UTF8.self)
    }

    static func table(_ outcomes: [HostOutcome<HostFacts>]) -> String {
        let header = ["HOST", "HOSTNAME", "OS", "ARCH", "BOARD", "MEMORY", "MEMCG", "BOOT ID", "K3S", "DOCKER", "RUNNER"]
        let rows = outcomes.map { outcome -> [String] in
            switch outcome.result {
            case .success(let f):
                let os = [f.os.id, f.os.versionCodename].compactMap { $0 }.joined(separator: " ")
                return [outcome.host.name, f.hostname ?? "-", os.isEmpty ? "-" : os, f.arch ?? "-",
                        f.board ?? "-", f.memoryBytes.map(memory) ?? "-",
                        f.memoryCgroup.map { $0 ? "yes" : "NO" } ?? "-", f.bootId.map { String($0.prefix(8)) } ?? "-",
                        f.versions.k3s ?? "-", f.versions.docker ?? "-", f.versions.gitlabRunner ?? "-"]
            case .failure:
                return [outcome.host.name, "(failed, see below)"] + Array(repeating: "", count: header.count - 2)
            }
        }
        return TextTable.render(header: header, rows: rows)
    }

    static func memory(_ bytes: Int) -> String {
        let gib = Double(bytes) / 1_073_741_824
        return gib >= 1 ? String(format: "%.1f GiB", gib) : "\(bytes / 1_048_576) MiB"
    }
}
