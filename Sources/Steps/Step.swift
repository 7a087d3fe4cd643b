import Facts
import Inventory
import Templates

/// One thing a host must be, in the words of the manual procedure: it reads facts and its own probe's output
/// and decides, without touching the network. `plan` and `apply` call the same `decide`.
public protocol Step: Sendable {
    /// Stable id, used in plans, the journal and `--step` filters (e.g. "base-packages").
    var id: String { get }
    /// One line for humans.
    var summary: String { get }
    /// Steps on the same host that must have converged first.
    var dependsOn: [String] { get }
    /// Steps on other hosts that must have converged first (e.g. agents wait for the first server).
    var waitsFor: [RemoteDependency] { get }

    /// Whether the step can concern this host at all, judged by what the inventory says of it (its roles) before
    /// anything is read from it. A host it does not concern is not probed for it: its probe is left out of the round.
    func concerns(_ host: InventoryHost) -> Bool
    /// Whether the step concerns this host given its facts (by board, by what is installed...); only asked where
    /// `concerns` is true.
    func applies(to host: InventoryHost, facts: HostFacts) -> Bool
    /// A read-only shell snippet whose output `decide` reads; it runs in the same round trip as the facts.
    func probe(for host: InventoryHost) -> String
    /// The decision, from facts and probe output alone.
    func decide(_ context: StepContext) throws -> Decision
    /// What the inventory and templates ask of this step on this host (not what the host has): when it is
    /// unchanged since a finished run, `--resume` may say so; the host is still checked.
    func desiredState(_ context: StepContext) -> String
    /// Values this step makes known to every host's later steps once it has converged here (the cluster token).
    /// They are treated as secrets: redacted from every log line, output and journal row.
    func shares(_ context: StepContext) -> [String: String]
    /// What the step needs GitLab to answer before it decides (from the host's probe output); answered in
    /// `StepContext.gitlab`.
    func gitlabQueries(_ context: StepContext) -> [GitLabQuery]
}

extension Step {
    public var dependsOn: [String] { [] }
    public var waitsFor: [RemoteDependency] { [] }
    public func concerns(_ host: InventoryHost) -> Bool { true }
    public func applies(to host: InventoryHost, facts: HostFacts) -> Bool { concerns(host) }
    public func shares(_ context: StepContext) -> [String: String] { [:] }
    public func gitlabQueries(_ context: StepContext) -> [GitLabQuery] { [] }

    public func desiredState(_ context: StepContext) -> String {
        let host = context.host
        return [id, host.name, host.address, host.roles.map(\.rawValue).joined(separator: ","),
                host.labels.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
                context.inventory.k3s?.version ?? ""].joined(separator: "|")
    }
}

/// "Step S on the host chosen by `selector` must have converged".
public struct RemoteDependency: Sendable, Equatable {
    public enum Selector: Sendable, Equatable {
        case firstServer
        case host(String)
        /// Every other host of the run (where the step does not apply, there is nothing to wait for).
        case everyHost
        /// For a server, the servers listed before it (they join one at a time); for any other host, every server.
        case precedingServers
    }

    public var step: String
    public var on: Selector

    public init(step: String, on: Selector) {
        self.step = step
        self.on = on
    }
}

/// What a step decides from.
public struct StepContext: Sendable {
    public var host: InventoryHost
    public var inventory: Inventory
    public var facts: HostFacts
    /// This step's probe output.
    public var probe: String
    public var templates: TemplateSet
    /// What other steps shared so far (see `Step.shares`), e.g. "k3s-token".
    public var shared: [String: String]
    /// GitLab's answers to this step's `gitlabQueries`.
    public var gitlab: [GitLabQuery: GitLabAnswer]

    public init(host: InventoryHost, inventory: Inventory, facts: HostFacts, probe: String, templates: TemplateSet,
                shared: [String: String] = [:], gitlab: [GitLabQuery: GitLabAnswer] = [:]) {
        self.host = host
        self.inventory = inventory
        self.facts = facts
        self.probe = probe
        self.templates = templates
        self.shared = shared
        self.gitlab = gitlab
    }
}

/// The outcome of a check: nothing to do, or what to change and why.
public enum Decision: Sendable, Equatable {
    /// The host already matches; the reason says how we know.
    case ok(String)
    /// The host differs; `reason` says how ("k3s v1.31.4 installed, inventory wants v1.32.5").
    case change(reason: String, actions: [Action])

    public var reason: String {
        switch self {
        case .ok(let reason), .change(let reason, _): reason
        }
    }

    public var actions: [Action] {
        if case .change(_, let actions) = self { return actions }
        return []
    }
}

/// One thing the engine does to a host. Steps only describe; the engine performs.
public enum Action: Sendable, Equatable {
    /// A shell command run as root; non-zero exit fails the step.
    case run(String)
    /// A file written atomically (temporary file, then rename) with the previous one kept as `<path>.provision.bak`.
    /// nil mode or owner leaves them as the filesystem makes them (FAT /boot partitions refuse chmod and chown).
    case writeFile(path: String, content: String, mode: Int?, owner: String?)
    /// Reboot and wait for the host to come back with a new boot id.
    case reboot(reason: String)
    /// A local file sent to the host (compared by sha256 beforehand), placed atomically.
    case upload(localPath: String, remotePath: String, mode: Int)
    /// Nothing to do but wait: read the host again until the step is satisfied, for at most `timeout` seconds.
    case awaitConvergence(timeout: Double)
    /// A shell command run as root on another host of the inventory (kubectl on a server for this node).
    case runOn(host: String, command: String)
    /// The change takes this host out of service: at most the group's width of hosts (`--max-unavailable`) are
    /// in that state at once. Held from the first action until the step is checked again.
    case disruptive(group: String)
    /// A change in GitLab, made with the engine's GitLab client; the step decides again afterwards (with what the
    /// request shared), so creating a runner and writing its token to config.toml are two rounds of one step.
    case gitlab(GitLabRequest)

    /// For `plan` and `-v`: what the action will do, without file contents.
    public var summary: String {
        switch self {
        case .run(let command): "run: \(command)"
        case .writeFile(let path, let content, let mode, let owner):
            "write \(path) (\(content.utf8.count) bytes\(mode.map { ", mode " + String($0, radix: 8) } ?? "")\(owner.map { ", " + $0 } ?? ""))"
        case .reboot(let reason): "reboot (\(reason))"
        case .upload(let local, let remote, let mode): "upload \(local) to \(remote) (mode \(String(mode, radix: 8)))"
        case .awaitConvergence(let timeout): "wait up to \(Int(timeout))s"
        case .runOn(let host, let command): "run on \(host): \(command)"
        case .disruptive(let group): "one of the \(group) out of service at a time (--max-unavailable)"
        case .gitlab(let request): request.summary
        }
    }
}

/// A step's input was not what it expected (e.g. probe output it cannot read).
public struct StepError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
