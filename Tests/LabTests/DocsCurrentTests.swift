import Foundation
import LabSupport
import Testing

/// The committed completions and man page (docs/completions, docs/man, written by scripts/gen-docs) match the
/// commands the built binary has, so a new command or option cannot leave them silently stale. No lab needed.
@Suite struct DocsCurrentTests {
    static let regenerate = "run scripts/gen-docs and commit docs/completions and docs/man"

    func committed(_ path: String) throws -> String {
        try String(contentsOfFile: Repo.root + "/docs/" + path, encoding: .utf8)
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptIsCurrent(shell: String) throws {
        let generated = try run(Repo.provisionBinary, ["--generate-completion-script", shell])
        #expect(generated.status == 0, "\(generated.stderr)")
        let file = try committed("completions/provision.\(shell)")
        let current = file == generated.stdout   // a Bool, so a failure names the file instead of printing both
        #expect(current, "docs/completions/provision.\(shell) is stale: \(Self.regenerate)")
    }

    /// A command of the binary's tree, from `--experimental-dump-help`.
    struct Command {
        var path: [String]
        var options: [String]
        var subcommands: [Command]
    }

    func commandTree() throws -> Command {
        let dump = try run(Repo.provisionBinary, ["--experimental-dump-help"])
        #expect(dump.status == 0, "\(dump.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        let root = try #require(json?["command"] as? [String: Any], "no command in --experimental-dump-help")
        return try #require(Self.command(root, parent: []))
    }

    static func command(_ json: [String: Any], parent: [String]) -> Command? {
        guard json["shouldDisplay"] as? Bool != false, let name = json["commandName"] as? String else { return nil }
        let path = parent + [name]
        let options = (json["arguments"] as? [[String: Any]] ?? []).compactMap { argument -> String? in
            guard argument["shouldDisplay"] as? Bool != false, argument["kind"] as? String != "positional" else {
                return nil
            }
            let names = argument["names"] as? [[String: Any]] ?? []
            return names.first { $0["kind"] as? String == "long" }?["name"] as? String
        }
        let subcommands = (json["subcommands"] as? [[String: Any]] ?? []).compactMap { command($0, parent: path) }
        return Command(path: path, options: options, subcommands: subcommands)
    }

    @Test func manPageHasEveryCommandAndOption() throws {
        let tree = try commandTree()
        #expect(tree.subcommands.contains { $0.path.last == "plan" }, "the command tree was not read")
        let lines = try committed("man/provision.1").split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix(".Dt PROVISION 1") })

        // Each subcommand is an `.It Em NAME` entry, nested in its parent's; its options follow up to the next one.
        func check(_ command: Command, from start: Int) {
            for sub in command.subcommands {
                let name = sub.path.joined(separator: " ")
                guard let index = lines[start...].firstIndex(of: ".It Em \(sub.path.last ?? "")") else {
                    Issue.record("docs/man/provision.1 lacks the command '\(name)': \(Self.regenerate)")
                    continue
                }
                let end = lines[(index + 1)...].firstIndex { $0.hasPrefix(".It Em ") } ?? lines.endIndex
                let section = lines[index..<end]
                for option in sub.options where sub.subcommands.isEmpty {
                    #expect(section.contains { $0.hasPrefix(".It Fl ") && ($0.contains(" -\(option) ") || $0.hasSuffix(" -\(option)")) },
                            "docs/man/provision.1 lacks '\(name) --\(option)': \(Self.regenerate)")
                }
                check(sub, from: index + 1)
            }
        }
        check(tree, from: 0)
    }
}
