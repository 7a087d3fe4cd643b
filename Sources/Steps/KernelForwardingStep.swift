import Facts
import Inventory
import ProvisionBasics

/// k3s prerequisite: the kernel forwards packets (sysctl file from templates/, applied at once).
public struct KernelForwardingStep: Step {
    public static let file = ManagedFile(path: "/etc/sysctl.d/90-provision-k3s.conf")

    public let id = "kernel-forwarding"
    public let summary = "IP forwarding on for k3s (sysctl.d file from a template)"
    public let dependsOn = ["base-packages"]

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    public func probe(for host: InventoryHost) -> String {
        Self.file.probe + "; cat /proc/sys/net/ipv4/ip_forward"
    }

    public func desiredState(_ context: StepContext) -> String {
        id + "|" + ((try? render(context)).map(ManagedFile.digest) ?? "unrenderable")
    }

    func render(_ context: StepContext) throws -> String {
        try context.templates.render("sysctl-k3s.conf.mustache", ["host": ["name": context.host.name]])
    }

    public func decide(_ context: StepContext) throws -> Decision {
        let lines = context.probe.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let content = try render(context)
        let file = Self.file.decide(content: content, remote: try ManagedFile.remote(lines.first ?? ""))
        let apply = Action.run("sysctl -q -p \(Self.file.path)")
        switch file {
        case .change(let reason, let actions):
            return .change(reason: reason, actions: actions + [apply])
        case .ok(let reason):
            let running = lines.count > 1 ? lines[1] : ""
            if running != "1" {
                return .change(reason: "net.ipv4.ip_forward is \(running.isEmpty ? "unknown" : running) in the running kernel, 1 wanted",
                               actions: [apply])
            }
            return .ok(reason + ", forwarding on")
        }
    }
}
