import Engine
import Foundation
import Journal
import ProvisionBasics

/// Live progress on stderr: on a terminal one updating line per host (current step, elapsed); otherwise one
/// plain line per finished step, prefixed by the host.
actor TerminalProgress: ProgressSink {
    private let live: Bool
    private let redactor: Redactor
    private var order: [String] = []
    private var lines: [String: String] = [:]
    private var started: [String: ContinuousClock.Instant] = [:]
    private var drawn = 0
    private var ticker: Task<Void, Never>?

    init(hosts: [String], redactor: Redactor, live: Bool = Console.stderrIsTerminal) {
        self.live = live
        self.redactor = redactor
        self.order = hosts
        for host in hosts { lines[host] = "waiting" }
    }

    func start() {
        guard live else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                await self?.redraw()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    func stop() {
        ticker?.cancel()
        if live { redraw() }
    }

    func hostStarted(_ host: String) { started[host] = .now; lines[host] = "connecting" }

    func stepStarted(_ host: String, step: String) { lines[host] = step }

    func stepFinished(_ host: String, outcome: StepOutcome) {
        if !live || outcome.status == .failed || outcome.status == .changed {
            emit("\(host): \(outcome.id): \(outcome.status.rawValue) — \(outcome.message)")
        }
        lines[host] = "\(outcome.id) \(outcome.status.rawValue)"
    }

    func hostFinished(_ report: HostReport) {
        let summary = report.error.map { "FAILED: \($0)" }
            ?? "done: \(report.count(.changed)) changed, \(report.count(.ok)) ok, \(report.count(.failed)) failed"
        if !live { emit("\(report.name): \(summary)") }
        lines[report.name] = summary
        started[report.name] = nil
    }

    func notice(_ host: String, _ message: String) { emit("\(host): \(message)") }

    /// A line above the live block (or a plain line).
    private func emit(_ text: String) {
        if live { clear() }
        Console.error(redactor.redact(text))
        if live { draw() }
    }

    private func redraw() {
        guard live else { return }
        clear()
        draw()
    }

    private func clear() {
        guard drawn > 0 else { return }
        Console.errorRaw(String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawn))
        drawn = 0
    }

    private func draw() {
        let width = order.map(\.count).max() ?? 0
        var text = ""
        for host in order {
            var line = host.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + (lines[host] ?? "")
            if let since = started[host] {
                line += String(format: "  %.1fs", Double((ContinuousClock.now - since).inMilliseconds) / 1000)
            }
            text += redactor.redact(line) + "\n"
        }
        Console.errorRaw(text)
        drawn = order.count
    }
}
