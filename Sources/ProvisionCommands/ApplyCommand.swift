import ArgumentParser
import Dispatch
import Engine
import Foundation
import Inventory
import Journal
import ProvisionBasics
import Steps
import Templates

/// `provision apply INVENTORY`: converge every host, journaled, one apply per inventory at a time.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Change what differs on each host, check it afterwards, and journal every step.",
        discussion: "Exit 0 when every host converged, 1 otherwise, 130 when interrupted. Ctrl-C once lets running remote commands finish and starts nothing new; twice aborts them.")

    @OptionGroup var options: HostOptions

    @Flag(help: "Continue the last apply that failed or was interrupted; its finished steps are only re-checked.")
    var resume = false

    @Option(help: "text or json.")
    var output: RunOutput.Format = .text


    @Option(help: "Seconds a rebooting host may take to come back.")
    var rebootTimeout: Double = 600

    @Option(help: "How many k3s agents may be drained for an upgrade or restarted for a config change at once.")
    var maxUnavailable = 1

    func validate() throws {
        guard maxUnavailable >= 1 else { throw ValidationError("--max-unavailable must be at least 1") }
    }

    func run() async throws {
        let inventory = try options.loadInventory()
        let selected = try options.selectedHosts(in: inventory)
        let redactor = Redactor(secrets: inventory.secrets)
        let lock: RunLock
        do {
            lock = try RunLock.acquire(path: JournalLocation.lock(forInventory: inventory.path), command: "provision apply")
        } catch let error as RunLockError {
            Console.error(error.description)
            throw ExitCode(1)
        }
        defer { lock.release() }
        if let previous = lock.tookOverFrom {
            Console.error("notice: the lock was left by pid \(previous.pid) on \(previous.machine) (\(previous.command), started \(Timestamp.utc(previous.startedAt))), which is gone; taking it over")
        }
        let journal = try Journal.open(path: JournalLocation.database(forInventory: inventory.path), redactor: redactor)
        var resumedFrom: Int64?
        var finishedEarlier: [String: (fingerprint: String, run: Int64)] = [:]
        if resume {
            if let previous = try await journal.resumableRun() {
                resumedFrom = previous.id
                for step in try await journal.completedSteps(inRunChain: previous.id) {
                    let key = Converger.key(step.host, step.step)
                    if finishedEarlier[key] == nil { finishedEarlier[key] = (step.fingerprint, step.runId) }
                }
                Console.error("resuming run \(previous.id) (\(previous.status.rawValue)): \(finishedEarlier.count) finished step(s) will only be re-checked")
            } else {
                Console.error("notice: no failed or interrupted apply to resume; running a full apply")
            }
        }
        K3s.remember(try await journal.fileDigests())
        let knownPrograms = try await journal.hostPrograms()
        let run = try await journal.beginRun(command: "apply", inventoryPath: inventory.path, resumedFrom: resumedFrom)
        let progress = TerminalProgress(hosts: selected.map(\.name), redactor: redactor)
        let logger = options.logger(redactor: redactor)
        let pool = ConnectionPool(logger: logger)
        let interruption = Interruption()
        let converger = Converger(inventory: inventory, templates: options.templates(for: inventory), pool: pool,
                                  settings: .init(mode: .apply, parallel: options.parallel, rebootTimeout: rebootTimeout,
                                                  finishedEarlier: finishedEarlier,
                                                  groupWidths: [K3s.agentsGroup: maxUnavailable],
                                                  knownPrograms: knownPrograms),
                                  progress: progress, journal: journal, runID: run.id, interruption: interruption,
                                  redactor: redactor,
                                  gitlab: try GitLabAccess.gateway(for: inventory, redactor: redactor, logger: logger))
        await progress.start()
        let work = Task { await converger.run(hosts: selected) }
        let signals = Self.onInterrupt(first: {
            interruption.request()
            Console.error("interrupted: letting running remote commands finish; Ctrl-C again to abort them")
        }, second: { work.cancel() })
        let reports = await work.value
        signals.cancel()
        await progress.stop()
        await pool.closeAll()
        let converged = reports.allSatisfy(\.converged)
        let status: RunStatus = interruption.requested ? .interrupted : converged ? .succeeded : .failed
        try await journal.finishRun(run.id, status: status)
        try? await journal.keep(K3s.knownDigests())
        // Hosts not read this time (unreachable) keep what an earlier run found.
        try? await journal.keep(programs: Dictionary(uniqueKeysWithValues: reports.compactMap { report in
            report.facts.map { (report.name, $0.programs) }
        }))
        switch output {
        case .json: Console.out(try RunOutput.json(reports, plan: false))
        case .text: Console.out(RunOutput.summary(reports))
        }
        if interruption.requested { throw ExitCode(130) }
        if !converged { throw ExitCode(1) }
    }

    /// SIGINT and SIGTERM: the first calls `first`, any later one `second`.
    static func onInterrupt(first: @escaping @Sendable () -> Void, second: @escaping @Sendable () -> Void) -> CombinedSource {
        let queue = DispatchQueue(label: "provision.signals")
        let counter = SignalCounter()
        let sources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { counter.next() == 1 ? first() : second() }
            source.resume()
            return source
        }
        return CombinedSource(sources: sources)
    }
}
