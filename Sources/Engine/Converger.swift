import Facts
import Foundation
import Inventory
import Journal
import Logging
import ProvisionBasics
import SSHTransport
import Steps
import Templates

/// Facts → decisions → actions, per host, in dependency order, hosts in parallel. `plan` and `apply` are the
/// same walk; plan stops at the decisions.
public struct Converger: Sendable {
    public enum Mode: Sendable { case plan, apply }

    public struct Settings: Sendable {
        public var mode: Mode
        public var parallel: Int
        /// How long a rebooting host may take to come back.
        public var rebootTimeout: Double
        /// Finished (changed or ok) steps of the run being resumed: "host\0step" → (fingerprint, run id).
        public var finishedEarlier: [String: (fingerprint: String, run: Int64)]
        /// How many hosts of a disruption group (`Action.disruptive`) may be out of service at once; 1 if absent.
        public var groupWidths: [String: Int]
        /// Per host, the versioned programs an earlier run found (the journal's): the first read of a host does not
        /// ask an unchanged one for its version again.
        public var knownPrograms: [String: [String: ProgramVersion]]

        public init(mode: Mode, parallel: Int = 10, rebootTimeout: Double = 600,
                    finishedEarlier: [String: (fingerprint: String, run: Int64)] = [:],
                    groupWidths: [String: Int] = [:], knownPrograms: [String: [String: ProgramVersion]] = [:]) {
            self.mode = mode
            self.parallel = parallel
            self.rebootTimeout = rebootTimeout
            self.finishedEarlier = finishedEarlier
            self.groupWidths = groupWidths
            self.knownPrograms = knownPrograms
        }
    }

    public let inventory: Inventory
    public let steps: [any Step]
    public let templates: TemplateSet
    public let pool: ConnectionPool
    public let settings: Settings
    public let progress: any ProgressSink
    public let journal: Journal?
    public let runID: Int64?
    public let interruption: Interruption
    /// Masks what steps share (tokens read from hosts) from the moment they are known.
    public let redactor: Redactor
    /// Where steps' GitLab queries and actions go; nil without a `gitlab:` block.
    public let gitlab: (any GitLabGateway)?
    let board = StepBoard()
    let slots = DisruptionSlots()

    public init(inventory: Inventory, steps: [any Step]? = nil, templates: TemplateSet,
                pool: ConnectionPool, settings: Settings, progress: any ProgressSink = SilentProgress(),
                journal: Journal? = nil, runID: Int64? = nil, interruption: Interruption = Interruption(),
                redactor: Redactor = .none, gitlab: (any GitLabGateway)? = nil) {
        self.inventory = inventory
        self.steps = steps ?? StepCatalog.steps(for: inventory)
        self.templates = templates
        self.pool = pool
        self.settings = settings
        self.progress = progress
        self.journal = journal
        self.runID = runID
        self.interruption = interruption
        self.redactor = redactor
        self.gitlab = gitlab
    }

    public static func key(_ host: String, _ step: String) -> String { host + "\u{0}" + step }

    /// Every selected host, in parallel (bounded); a host waits only for the steps it depends on.
    public func run(hosts: [InventoryHost]) async -> [HostReport] {
        let converger = self.with(selectedHosts: hosts.map(\.name))
        return await converger.runSelected(hosts: hosts)
    }

    /// The names of the hosts of this run (a step waiting for "every host" waits for these).
    var selectedHosts: [String] = []

    private func with(selectedHosts: [String]) -> Converger {
        var copy = self
        copy.selectedHosts = selectedHosts
        return copy
    }

    private func runSelected(hosts: [InventoryHost]) async -> [HostReport] {
        // Hosts another host waits for must not queue behind it: start them first.
        let ordered = hosts.sorted { rank($0) < rank($1) }
        let reports = await concurrentMap(ordered, limit: settings.parallel) { host in await self.converge(host) }
        let byName = Dictionary(uniqueKeysWithValues: reports.map { ($0.name, $0) })
        return hosts.compactMap { byName[$0.name] }
    }

    private func rank(_ host: InventoryHost) -> Int {
        if host.name == inventory.hosts.first(where: { $0.has(.server) })?.name { return 0 }
        return host.has(.server) ? 1 : 2
    }

    // MARK: One host

    private func converge(_ host: InventoryHost) async -> HostReport {
        let started = ContinuousClock.now
        await progress.hostStarted(host.name)
        var walk = HostWalk(host: host)
        var queue = StepQueue(steps: steps, host: host)
        var lastFacts: HostFacts?
        do {
            var connection = try await pool.connection(for: host)
            // When the host was last read: a change another host finished before then is in what was read.
            var probedAt = ContinuousClock.now
            var (facts, probes) = try await ProbeRound.run(on: connection, host: host, steps: steps,
                                                           known: settings.knownPrograms[host.name] ?? [:])
            lastFacts = facts
            // Each step is judged with the newest facts: a change by an earlier step can make it apply.
            while true {
                let (next, passed) = queue.next(facts: facts)
                // A step that does not apply here is nothing for other hosts to wait for.
                for id in passed { await board.finish(host: host.name, step: id, converged: true) }
                guard let step = next else { break }
                let (blocked, awaitedChange) = await blocker(for: step, on: host, walk: walk, readSince: probedAt)
                if let skipped = blocked {
                    walk.add(StepOutcome(id: step.id, status: interruption.requested ? .pending : .skipped, message: skipped))
                    // Whoever waits for it here must not wait for ever.
                    await board.finish(host: host.name, step: step.id, converged: false)
                    continue
                }
                // Another host changed something this step waited for (the server came up, agents joined) after
                // this host was last read: what it reported may be stale, so read it again. A converged re-run
                // skips this.
                if settings.mode == .apply && awaitedChange {
                    probedAt = .now
                    (facts, probes) = try await ProbeRound.run(on: connection, host: host, steps: queue.ahead, known: facts.programs)
                    lastFacts = facts
                }
                await progress.stepStarted(host.name, step: step.id)
                let stepStarted = ContinuousClock.now
                let startedAt = Date()
                var outcome: StepOutcome
                do {
                    let context: StepContext
                    (outcome, context) = try await converge(step, host: host, ahead: queue.ahead, connection: &connection,
                                                            facts: &facts, probes: &probes, probedAt: &probedAt)
                    // A plan shares what the host has now (a token already there), so later steps' plans compare
                    // with it rather than reporting a change that only follows from this one.
                    if outcome.status.converged || settings.mode != .apply { await share(step.shares(context)) }
                } catch {
                    outcome = StepOutcome(id: step.id, status: .failed, message: Self.describe(error, host: host.name))
                }
                lastFacts = facts
                outcome.durationMs = (ContinuousClock.now - stepStarted).inMilliseconds
                walk.add(outcome)
                await record(outcome, host: host.name, startedAt: startedAt)
                await progress.stepFinished(host.name, outcome: outcome)
                await board.finish(host: host.name, step: step.id, converged: outcome.status.converged,
                                   changed: outcome.status == .changed)
            }
        } catch {
            walk.error = Self.describe(error, host: host.name)
        }
        // Whoever waits for a step this host never finished must not wait forever; a step that does not apply
        // here (by the facts read last) is nothing to wait for.
        for (id, applies) in queue.applicability(lastFacts: lastFacts) where !walk.finished.contains(id) {
            await board.finish(host: host.name, step: id, converged: !applies)
        }
        let report = HostReport(name: host.name, steps: walk.outcomes, error: walk.error,
                                durationMs: (ContinuousClock.now - started).inMilliseconds, facts: lastFacts)
        await progress.hostFinished(report)
        return report
    }

    private struct HostWalk {
        let host: InventoryHost
        var outcomes: [StepOutcome] = []
        var finished: Set<String> = []
        var error: String?

        mutating func add(_ outcome: StepOutcome) {
            outcomes.append(outcome)
            finished.insert(outcome.id)
        }

        func pending(_ step: String) -> Bool {
            outcomes.first { $0.id == step }?.status == .pending
        }

        func converged(_ step: String) -> Bool {
            outcomes.first { $0.id == step }?.status.converged ?? true  // not applicable here counts as done
        }
    }

    /// Why `step` cannot run now, or nil when it can (waiting for other hosts' steps it depends on), and whether
    /// one of the steps it waited for changed its host at or after `readSince` (what this host reported when it was
    /// read then may be stale).
    private func blocker(for step: any Step, on host: InventoryHost, walk: HostWalk,
                         readSince: ContinuousClock.Instant) async -> (String?, changed: Bool) {
        if interruption.requested { return ("not started: the run was interrupted", false) }
        // A plan decides every step from today's host, even behind a pending change.
        if let failed = step.dependsOn.first(where: { !walk.converged($0) && !(settings.mode == .plan && walk.pending($0)) }) {
            return ("not run: it needs \(failed), which did not converge", false)
        }
        // A plan waits too (for what other hosts share, like the cluster token), but decides whatever they said.
        var changed = false
        for dependency in step.waitsFor {
            for other in resolve(dependency.on, for: host) where other != host.name {
                if !(await board.wait(host: other, step: dependency.step)) && settings.mode == .apply {
                    return ("not run: it waits for \(dependency.step) on \(other), which did not converge", changed)
                }
                if await board.changed(host: other, step: dependency.step, since: readSince) { changed = true }
            }
        }
        return (nil, changed)
    }

    /// The hosts of this run a dependency names; a host outside the run (`--host`) is not waited for.
    private func resolve(_ selector: RemoteDependency.Selector, for host: InventoryHost) -> [String] {
        let names: [String]
        switch selector {
        case .firstServer: names = inventory.firstServer.map { [$0.name] } ?? []
        case .host(let name): names = [name]
        case .everyHost: names = selectedHosts
        case .precedingServers:
            let servers = inventory.servers.map(\.name)
            names = host.has(.server) ? Array(servers.prefix { $0 != host.name }) : servers
        }
        return names.filter(selectedHosts.contains)
    }

    private func share(_ values: [String: String]) async {
        guard !values.isEmpty else { return }
        for value in values.values { redactor.learn(value) }
        await board.share(values)
    }

    private func context(_ step: any Step, host: InventoryHost, facts: HostFacts,
                         probes: [String: String]) async -> StepContext {
        var context = StepContext(host: host, inventory: inventory, facts: facts, probe: probes[step.id] ?? "",
                                  templates: templates, shared: await board.shared)
        for query in step.gitlabQueries(context) {
            context.gitlab[query] = await gitlab?.answer(query) ?? .failed("the inventory has no gitlab block")
        }
        return context
    }

    /// Decide; in apply mode change what differs, then check again that the host now matches. Returns the outcome
    /// and the context of the last check (what the step may share). A check reads the host for `ahead` (this step
    /// and the ones after it) only: the earlier steps are finished, and their probes (Docker, the runner's
    /// registration) can cost more than the step's own.
    private func converge(_ step: any Step, host: InventoryHost, ahead: [any Step], connection: inout SSHConnection,
                          facts: inout HostFacts, probes: inout [String: String],
                          probedAt: inout ContinuousClock.Instant) async throws -> (StepOutcome, StepContext) {
        var context = await context(step, host: host, facts: facts, probes: probes)
        let fingerprint = Self.fingerprint(step.desiredState(context))
        let decision = try step.decide(context)
        switch decision {
        case .ok(let reason):
            var message = reason
            if let earlier = settings.finishedEarlier[Self.key(host.name, step.id)], earlier.fingerprint == fingerprint {
                message += " (finished in run \(earlier.run), checked again)"
            }
            return (StepOutcome(id: step.id, status: .ok, message: message, fingerprint: fingerprint), context)
        case .change(let reason, let actions):
            guard settings.mode == .apply else {
                return (StepOutcome(id: step.id, status: .pending, message: reason, actions: actions.map(\.summary),
                                    fingerprint: fingerprint), context)
            }
            let started = ContinuousClock.now
            var group: String?
            for case .disruptive(let name) in actions { group = name }
            if let group { await slots.acquire(group, width: settings.groupWidths[group] ?? 1) }
            do {
                let result = try await change(step, reason: reason, actions: actions, fingerprint: fingerprint, host: host,
                                              ahead: ahead, connection: &connection, facts: &facts, probes: &probes, probedAt: &probedAt)
                if let group { await slots.release(group) }
                context = result.1
                var outcome = result.0
                // A step that only waited for the host (nodes turning Ready) changed nothing.
                if outcome.status == .changed && actions.allSatisfy(\.isWaitOnly) {
                    outcome.status = .ok
                    outcome.message = "\(result.now) (after waiting \((ContinuousClock.now - started).inMilliseconds / 1000) s)"
                }
                return (outcome, context)
            } catch {
                if let group { await slots.release(group) }
                throw error
            }
        }
    }

    private func change(_ step: any Step, reason: String, actions: [Action], fingerprint: String, host: InventoryHost,
                        ahead: [any Step], connection: inout SSHConnection, facts: inout HostFacts, probes: inout [String: String],
                        probedAt: inout ContinuousClock.Instant) async throws -> (StepOutcome, StepContext, now: String) {
        await record(StepOutcome(id: step.id, status: .running, message: reason, fingerprint: fingerprint),
                     host: host.name, startedAt: Date())
        await progress.notice(host.name, "\(step.id): changing: \(reason)")
        var output = ""
        var waitUntil: ContinuousClock.Instant?
        var after: Decision
        var context: StepContext
        var current = actions
        var round = 1
        while true {
            var index = 0
            // What the run batch that ended the actions read back in the same command (facts and probes).
            var readWithLastBatch: (HostFacts, [String: String])?
            while index < current.count {
                let action = current[index]
                if case .awaitConvergence(let timeout) = action {
                    waitUntil = .now + .milliseconds(Int(timeout * 1000))
                    index += 1
                    continue
                }
                // Consecutive commands go to the host as one (a round trip and a channel each saved).
                var commands: [String] = []
                while index < current.count, case .run(let command) = current[index] {
                    commands.append(command)
                    index += 1
                }
                if !commands.isEmpty && index == current.count {
                    // The last actions of the round: the host is read again in the same command, not the next.
                    probedAt = .now
                    let (ran, read) = try await Self.runThenRead(commands, host: host, steps: ahead, known: facts.programs,
                                                                   on: connection)
                    output += ran
                    readWithLastBatch = read
                    continue
                }
                if !commands.isEmpty {
                    output += try await Self.run(commands, on: connection)
                    continue
                }
                output += try await perform(action, host: host, connection: &connection, facts: facts)
                index += 1
            }
            repeat {
                if let read = readWithLastBatch {
                    (facts, probes) = read
                    readWithLastBatch = nil
                } else {
                    probedAt = .now
                    (facts, probes) = try await ProbeRound.run(on: connection, host: host, steps: ahead, known: facts.programs)
                }
                context = await self.context(step, host: host, facts: facts, probes: probes)
                after = try step.decide(context)
                guard case .change = after, let deadline = waitUntil, ContinuousClock.now < deadline else { break }
                try await Task.sleep(for: .seconds(1))
            } while true
            // A GitLab change is followed by what it made possible (a created runner's token into config.toml).
            let askedGitLab = current.contains { if case .gitlab = $0 { true } else { false } }
            guard askedGitLab, round < 4, case .change(_, let next) = after else { break }
            current = next
            round += 1
        }
        guard case .ok(let now) = after else {
            return (StepOutcome(id: step.id, status: .failed, message: "changed, but the check still says: \(after.reason)",
                                fingerprint: fingerprint, outputTail: output), context, "")
        }
        return (StepOutcome(id: step.id, status: .changed, message: "\(reason); now \(now)", fingerprint: fingerprint,
                            outputTail: output), context, now)
    }

    private func perform(_ action: Action, host: InventoryHost, connection: inout SSHConnection,
                         facts: HostFacts) async throws -> String {
        switch action {
        case .run(let command):
            return try await Self.run([command], on: connection)
        case .writeFile(let path, let content, let mode, let owner):
            try await connection.upload(.data(Data(content.utf8)), to: path, mode: mode, owner: owner, backup: true)
            return "wrote \(path)\n"
        case .upload(let local, let remote, let mode):
            try await connection.upload(.file(local), to: remote, mode: mode, owner: "root:root")
            return "uploaded \(remote)\n"
        case .awaitConvergence, .disruptive:
            return ""
        case .gitlab(let request):
            guard let gitlab else { throw StepError("the inventory has no gitlab block") }
            await share(try await gitlab.perform(request))
            return "GitLab: \(request.summary)\n"
        case .runOn(let name, let command):
            guard let other = inventory.host(named: name) else { throw StepError("\(name) is not in the inventory") }
            let result = try await pool.connection(for: other).run(command, privileged: true)
            guard result.succeeded else {
                let last = result.stderrText.split(separator: "\n").last.map(String.init) ?? ""
                throw StepError("`\(command)` on \(name) failed (\(result.statusDescription)): \(last)")
            }
            return result.stdoutText + result.stderrText
        case .reboot(let reason):
            await progress.notice(host.name, "rebooting: \(reason)")
            connection = try await Reboot.perform(host: host, connection: connection, pool: pool,
                                                  bootID: facts.bootId, timeout: settings.rebootTimeout)
            return "rebooted (\(reason))\n"
        }
    }

    static let failedActionMarker = "@@provision-failed-action"

    /// `run` actions in order as one remote command, each in a subshell of its own as if it ran alone; the first
    /// that fails stops the rest and is the one the error names. Returns their output.
    static func run(_ commands: [String], on connection: SSHConnection) async throws -> String {
        let script = commands.count == 1 ? commands[0] : batch(commands)
        return try check(await connection.run(script, privileged: true), commands: commands)
    }

    /// Each command in a subshell of its own; the first failure exits, naming its index on stderr.
    static func batch(_ commands: [String]) -> String {
        commands.enumerated().map { index, command in
            "(\n\(command)\n) || { rc=$?; printf '\\n%s %d\\n' \(failedActionMarker) \(index) >&2; exit $rc; }"
        }.joined(separator: "\n")
    }

    static let readMarker = "@@provision-read-again"

    /// `run`, then the probe round in the same remote command once every command succeeded: the re-check that
    /// follows a change costs no round trip of its own. The round's output (and stderr) follow a marker line.
    static func runThenRead(_ commands: [String], host: InventoryHost, steps: [any Step],
                            known: [String: ProgramVersion] = [:], on connection: SSHConnection) async throws -> (String, (HostFacts, [String: String])) {
        let script = batch(commands) + "\nprintf '\\n%s\\n' \(readMarker); printf '\\n%s\\n' \(readMarker) >&2\n"
            + ProbeRound.script(for: host, steps: steps, known: known)
        let result = try await connection.run(script, privileged: true)
        let split = "\n\(readMarker)\n"
        guard let out = result.stdoutText.range(of: split, options: .backwards),
              let err = result.stderrText.range(of: split, options: .backwards) else {
            // A command failed (or the connection's shell died) before the round began.
            _ = try check(result, commands: commands)
            throw StepError("`\(commands.joined(separator: "`, `"))` ended without reading the host again (\(result.statusDescription))")
        }
        let ran = String(result.stdoutText[..<out.lowerBound]) + String(result.stderrText[..<err.lowerBound])
        let read = try ProbeRound.read(stdout: String(result.stdoutText[out.upperBound...]),
                                       stderr: String(result.stderrText[err.upperBound...]),
                                       status: result, host: host)
        return (ran, read)
    }

    /// The output of commands sent by `run` or `batch`, or the error naming the one that failed.
    private static func check(_ result: CommandResult, commands: [String]) throws -> String {
        var stderr = result.stderrText
        var failed: String?
        if let marker = stderr.range(of: "\n\(failedActionMarker) ", options: .backwards) {
            let index = Int(stderr[marker.upperBound...].prefix { $0.isNumber }) ?? -1
            failed = commands.indices.contains(index) ? commands[index] : nil
            stderr = String(stderr[..<marker.lowerBound])
        }
        guard result.succeeded else {
            let last = stderr.split(separator: "\n").last.map(String.init) ?? ""
            throw StepError("`\(failed ?? commands.joined(separator: "`, `"))` failed (\(result.statusDescription)): \(last)")
        }
        return result.stdoutText + stderr
    }

    private func record(_ outcome: StepOutcome, host: String, startedAt: Date) async {
        guard let journal, let runID else { return }
        let record = StepRecord(runId: runID, host: host, step: outcome.id, status: outcome.status,
                                fingerprint: outcome.fingerprint, startedAt: startedAt, durationMs: outcome.durationMs,
                                message: outcome.message, outputTail: outcome.outputTail)
        try? await journal.record(record)
    }

    static func fingerprint(_ text: String) -> String {
        String(ManagedFile.digest(text).prefix(32))
    }

    static func describe(_ error: any Error, host: String) -> String {
        let text = String(describing: error)
        return text.hasPrefix(host + ": ") ? String(text.dropFirst(host.count + 2)) : text
    }
}

extension StepStatus {
    var converged: Bool { self == .ok || self == .changed }
}

extension Action {
    /// Waiting and holding a slot change nothing on a host.
    var isWaitOnly: Bool {
        switch self {
        case .awaitConvergence, .disruptive: true
        default: false
        }
    }
}
