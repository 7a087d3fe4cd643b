import Facts
import Foundation
import Inventory
import ProvisionBasics
import TOMLKit

/// Procedure step 3's registration, without duplicates: every runner the inventory lists exists in GitLab and in
/// /etc/gitlab-runner/config.toml (rendered from templates/, 0600), its token still verifies, and GitLab shows it
/// online. A runner created in GitLab is written to config.toml in the next round of the same step; a runner
/// GitLab no longer knows is created again; a block the inventory no longer lists is deleted in GitLab and dropped.
/// A runner a run created but never wrote (interrupted, host gone) is found before the next creation by its
/// description, this inventory's maintenance note and GitLab's never_contacted status, and deleted.
/// Tokens go to GitLab in request bodies and to the host in the 0600 file only, never on a command line.
public struct GitLabRunnerRegistrationStep: Step {
    public static let file = ManagedFile(path: "/etc/gitlab-runner/config.toml", mode: 0o600, owner: "root:root")
    public static let systemIDFile = "/etc/gitlab-runner/.runner_system_id"
    public static let caPath = "/etc/gitlab-runner/certs/provision-gitlab-ca.crt"
    /// How long a runner may take to show as online in GitLab after its config is in place.
    public static let onlineTimeout = 90.0

    public let id = "gitlab-runner-registration"
    public let summary = "runners created in GitLab, written to config.toml, verified and online"
    public let dependsOn = ["gitlab-runner-package"]

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.runner) }

    /// The file's digest, the system id, the CA file's digest, then config.toml itself (it holds the tokens: it stays
    /// in memory, like every probe's output).
    public func probe(for host: InventoryHost) -> String {
        Self.file.probe + "; echo; printf 'system_id='; cat \(Self.systemIDFile) 2>/dev/null | head -n 1; echo; "
            + "printf 'ca='; sha256sum \(Self.caPath) 2>/dev/null | cut -d' ' -f1; echo; echo '@@config'; "
            + "cat \(Self.file.path) 2>/dev/null; true"
    }

    /// A `[[runners]]` block as found in config.toml.
    struct Block: Decodable, Equatable {
        var name: String?
        var id: Int?
        var token: String?
    }

    struct Probe: Equatable {
        var digestLine = ""
        var systemID = ""
        var caDigest = ""
        var blocks: [Block] = []
        var unreadable: String?
    }

    static func read(_ output: String) -> Probe {
        var probe = Probe()
        let parts = output.components(separatedBy: "@@config\n")
        for line in parts[0].split(separator: "\n").map(String.init) {
            if line.hasPrefix("system_id=") { probe.systemID = String(line.dropFirst(10)).trimmingCharacters(in: .whitespaces) }
            else if line.hasPrefix("ca=") { probe.caDigest = String(line.dropFirst(3)) }
            else if probe.digestLine.isEmpty { probe.digestLine = line }
        }
        let text = parts.count > 1 ? parts[1] : ""
        if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            struct Config: Decodable { var runners: [Block]? }
            do {
                probe.blocks = try TOMLDecoder().decode(Config.self, from: text).runners ?? []
            } catch {
                probe.unreadable = "config.toml is not valid TOML (\(error)); it will be replaced"
            }
        }
        return probe
    }

    /// What one inventory runner is on this host.
    struct Wanted {
        var settings: RunnerSettings
        var description: String
        var sharedKey: String
    }

    static func wanted(_ context: StepContext) -> [Wanted] {
        (context.inventory.gitlab?.runners ?? []).map { runner in
            let description = "\(context.host.name)-\(runner.name)"
            return Wanted(settings: runner, description: description, sharedKey: "gitlab-runner:\(description)")
        }
    }

    /// "<id> <token>" as shared by the GitLab action that created the runner.
    static func created(_ value: String?) -> (Int, String)? {
        guard let value, let space = value.firstIndex(of: " "), let id = Int(value[..<space]) else { return nil }
        return (id, String(value[value.index(after: space)...]))
    }

    public func gitlabQueries(_ context: StepContext) -> [GitLabQuery] {
        let probe = Self.read(context.probe)
        var queries: [GitLabQuery] = probe.blocks.compactMap { block in
            block.token.map { .verifyRunner(token: $0, systemID: probe.systemID) }
        }
        if let given = context.inventory.gitlab?.runnerToken { queries.append(.verifyRunner(token: given, systemID: probe.systemID)) }
        // A runner about to be created may have been created before by a run that then could not write config.toml.
        if let gitlab = context.inventory.gitlab, gitlab.token != nil, gitlab.runnerToken == nil {
            for wanted in Self.wanted(context) where context.shared[wanted.sharedKey] == nil
                && !probe.blocks.contains(where: { $0.name == wanted.description && $0.token != nil }) {
                let note = Self.creation(wanted, inventory: context.inventory.path).maintenanceNote
                queries.append(.leftoverRunners(description: wanted.description, maintenanceNote: note))
            }
        }
        // Online is read with the access token; without one, verify is all GitLab tells.
        if context.inventory.gitlab?.token != nil {
            let names = Set(Self.wanted(context).map(\.description))
            for block in probe.blocks where names.contains(block.name ?? "") {
                if let id = block.id, id > 0 { queries.append(.runner(id: id)) }
            }
        }
        return queries
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard let gitlab = context.inventory.gitlab else { throw StepError("the host has the runner role but the inventory has no gitlab block") }
        let probe = Self.read(context.probe)
        if probe.systemID.isEmpty && (!probe.blocks.isEmpty || gitlab.runnerToken != nil) {
            throw StepError("\(Self.systemIDFile) is missing: gitlab-runner writes it when its service starts; check `systemctl status gitlab-runner`")
        }
        var keep: [(Wanted, id: Int, token: String)] = []
        var gitlabActions: [Action] = []
        var reasons: [String] = []
        for wanted in Self.wanted(context) {
            let block = probe.blocks.first { $0.name == wanted.description }
            if let block, let token = block.token {
                switch context.gitlab[.verifyRunner(token: token, systemID: probe.systemID)] {
                case .valid(let id)?:
                    keep.append((wanted, id == 0 ? block.id ?? 0 : id, token))
                    continue
                case .failed(let message)?:
                    throw StepError("cannot check runner \(wanted.description) with GitLab: \(message)")
                default:
                    reasons.append("runner \(wanted.description) is no longer known to GitLab")
                }
            }
            if let (id, token) = Self.created(context.shared[wanted.sharedKey]) {
                keep.append((wanted, id, token))
                continue
            }
            if let given = gitlab.runnerToken {
                guard case .valid(let id)? = context.gitlab[.verifyRunner(token: given, systemID: probe.systemID)] else {
                    throw StepError("gitlab.runnerToken does not verify with GitLab (deleted or wrong); create the runner again in GitLab or use gitlab.token")
                }
                keep.append((wanted, id, given))
                continue
            }
            let creation = Self.creation(wanted, inventory: context.inventory.path)
            if gitlab.token != nil {
                // Left by a run that created it and could not write config.toml: deleted first, or it stays a
                // duplicate nobody has the token of.
                switch context.gitlab[.leftoverRunners(description: wanted.description, maintenanceNote: creation.maintenanceNote)] {
                case .runnerIDs(let ids)? where !ids.isEmpty:
                    gitlabActions += ids.map { .gitlab(.deleteLeftoverRunner(id: $0, description: wanted.description)) }
                    reasons.append("runner \(wanted.description) \(ids.map { "#\($0)" }.joined(separator: ", ")) in GitLab was created by an earlier run but never written to config.toml")
                case .failed(let message)?:
                    reasons.append("warning: cannot look for a runner \(wanted.description) that an interrupted run left in GitLab (\(message))")
                default:
                    break
                }
                gitlabActions.append(.gitlab(.createRunner(creation, sharedKey: wanted.sharedKey)))
            } else if gitlab.registrationToken != nil {
                gitlabActions.append(.gitlab(.registerRunner(creation, sharedKey: wanted.sharedKey)))
                reasons.append("warning: registering with a registration token, which GitLab deprecated (disabled by default since 17.0, removal planned); use gitlab.token with the create_runner scope")
            } else {
                throw StepError("no way to create runner \(wanted.description): set gitlab.token (create_runner scope), gitlab.runnerToken or gitlab.registrationToken")
            }
            if block == nil { reasons.append("runner \(wanted.description) is not registered") }
        }
        // Blocks the inventory no longer lists: deleted in GitLab (while their token still works), then dropped.
        let names = Set(Self.wanted(context).map(\.description))
        for block in probe.blocks where !names.contains(block.name ?? "") {
            reasons.append("runner \(block.name ?? "without a name") is not in the inventory")
            if let token = block.token, case .valid? = context.gitlab[.verifyRunner(token: token, systemID: probe.systemID)] {
                gitlabActions.append(.gitlab(.deleteRunner(token: token, description: block.name ?? "")))
            }
        }
        if !gitlabActions.isEmpty { return .change(reason: reasons.joined(separator: "; "), actions: gitlabActions) }

        // GitLab is settled: config.toml must hold exactly the kept runners.
        var actions: [Action] = []
        var caFile: String?
        if let local = gitlab.caFile {
            let content = try String(contentsOfFile: local, encoding: .utf8)
            caFile = Self.caPath
            if ManagedFile.digest(content) != probe.caDigest {
                actions.append(.writeFile(path: Self.caPath, content: content, mode: 0o644, owner: "root:root"))
            }
        }
        let content = try render(context, runners: keep, caFile: caFile)
        let remote = try ManagedFile.remote(probe.digestLine)
        if case .change(let why, let write) = Self.file.decide(content: content, remote: remote) {
            reasons.append(probe.unreadable ?? why)
            actions += write + [.run("gitlab-runner verify")]
        }
        if !actions.isEmpty { return .change(reason: reasons.isEmpty ? "config.toml differs" : reasons.joined(separator: "; "), actions: actions) }

        // Settings GitLab keeps (tags, paused…) as the inventory says: put right in place, the runner stays.
        var updates: [Action] = []
        var differing: [String] = []
        for (wanted, id, _) in keep {
            // Only runners provision made: one made by hand (gitlab.runnerToken) keeps what its owner set.
            guard case .runner(_, let current?)? = context.gitlab[.runner(id: id)],
                  current.maintenanceNote.hasPrefix(Self.maintenanceNotePrefix) else { continue }
            let want = Self.creation(wanted, inventory: context.inventory.path)
            let changes = Self.settingsDifferences(current, want)
            if !changes.isEmpty {
                differing.append("runner \(wanted.description) (#\(id)) in GitLab: \(changes.joined(separator: ", "))")
                updates.append(.gitlab(.updateRunner(id: id, want)))
            }
        }
        if !updates.isEmpty { return .change(reason: differing.joined(separator: "; "), actions: updates) }

        // Registered and verified; GitLab should see each runner online once the service has polled it.
        var offline: [String] = []
        for kept in keep {
            if case .runner(let status, _)? = context.gitlab[.runner(id: kept.id)], status != "online" {
                offline.append("\(kept.0.description) (\(status))")
            }
        }
        if !offline.isEmpty {
            return .change(reason: "runner(s) not online in GitLab yet: \(offline.joined(separator: ", "))",
                           actions: [.awaitConvergence(timeout: Self.onlineTimeout)])
        }
        let names2 = keep.map { "\($0.0.description) (#\($0.id))" }.joined(separator: ", ")
        return .ok(keep.isEmpty ? "no runner to register" : "\(names2) registered, verified\(gitlab.token == nil ? "" : " and online")")
    }

    /// What GitLab has that the inventory does not, as "tags a,b (inventory: c)"; the type and the runner's
    /// project or group cannot change in place and are not compared (a runner is made once, for its scope).
    static func settingsDifferences(_ current: RunnerCreation, _ wanted: RunnerCreation) -> [String] {
        var out: [String] = []
        func list(_ tags: [String]) -> String { tags.isEmpty ? "none" : tags.sorted().joined(separator: ",") }
        if Set(current.tags) != Set(wanted.tags) { out.append("tags \(list(current.tags)) (inventory: \(list(wanted.tags)))") }
        if current.runUntagged != wanted.runUntagged { out.append("runUntagged \(current.runUntagged) (inventory: \(wanted.runUntagged))") }
        if current.paused != wanted.paused { out.append("paused \(current.paused) (inventory: \(wanted.paused))") }
        if current.locked != wanted.locked { out.append("locked \(current.locked) (inventory: \(wanted.locked))") }
        if current.accessLevel != wanted.accessLevel { out.append("accessLevel \(current.accessLevel) (inventory: \(wanted.accessLevel))") }
        if let timeout = wanted.maximumTimeout, current.maximumTimeout != timeout {
            out.append("maximumTimeout \(current.maximumTimeout.map(String.init) ?? "none") (inventory: \(timeout))")
        }
        return out
    }

    static let maintenanceNotePrefix = "managed by provision"

    static func creation(_ wanted: Wanted, inventory: String) -> RunnerCreation {
        let runner = wanted.settings
        return RunnerCreation(runnerType: runner.runnerType.rawValue, projectID: runner.projectId, groupID: runner.groupId,
                              description: wanted.description, tags: runner.tags, runUntagged: runner.runUntagged,
                              locked: runner.locked, accessLevel: runner.accessLevel.rawValue,
                              maximumTimeout: runner.maximumTimeout, paused: runner.paused,
                              maintenanceNote: "\(maintenanceNotePrefix) (\(inventory))")
    }

    func render(_ context: StepContext, runners: [(Wanted, id: Int, token: String)], caFile: String?) throws -> String {
        guard let gitlab = context.inventory.gitlab else { throw StepError("no gitlab block") }
        let values: [String: Any] = [
            "host": context.host.name,
            "concurrent": gitlab.concurrent,
            "checkInterval": gitlab.checkInterval,
            "runners": runners.map { runner, id, token -> [String: Any] in
                let settings = runner.settings
                let docker = settings.executor == .docker
                return [
                    "name": TOMLText.quote(runner.description),
                    "url": TOMLText.quote(gitlab.url),
                    "id": id,
                    "token": TOMLText.quote(token),
                    "executor": TOMLText.quote(settings.executor.rawValue),
                    "caFile": caFile.map(TOMLText.quote) ?? false,
                    "docker": docker,
                    "image": TOMLText.quote(settings.image ?? "docker:27"),
                    "privileged": settings.privileged,
                    "volumes": settings.volumes.map(TOMLText.quote).joined(separator: ", "),
                    "shmSize": settings.shmSize ?? 0,
                ]
            },
        ]
        let text = try context.templates.render("gitlab-runner-config.toml.mustache", values)
        // What gitlab-runner will read must parse: a template edit that breaks TOML stops here, not on the host.
        do { _ = try TOMLTable(string: text) } catch {
            throw StepError("the rendered config.toml is not valid TOML (\(error)); check templates/host/gitlab-runner-config.toml.mustache")
        }
        return text
    }
}

/// TOML basic strings: quotes and backslashes escaped, control characters as \u escapes.
enum TOMLText {
    static func quote(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case let c where c.value < 0x20 || c.value == 0x7f: out += String(format: "\\u%04X", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
