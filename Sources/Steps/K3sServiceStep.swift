import Facts
import Inventory
import ProvisionBasics

/// Procedure step 4: the k3s install script (from the airgap folder, never downloading) installs and starts
/// `k3s` on servers and `k3s-agent` on agents; config.yaml already carries the server address and token, so no
/// secret is on a command line. Agents and joining servers wait for the first server. A node that runs the wanted
/// version is left alone.
public struct K3sServiceStep: Step {
    public let id = "k3s-service"
    public let summary = "k3s installed at the pinned version and running (server or agent)"
    public let dependsOn = ["pi-cgroups", "kernel-forwarding", "k3s-assets", "k3s-config"]
    public let waitsFor = [RemoteDependency(step: "k3s-service", on: .firstServer)]
    /// The install script waits for k3s to report ready; a wrong token would make it wait forever.
    public static let installTimeout = 300

    public init() {}

    public func applies(to host: InventoryHost, facts: HostFacts) -> Bool { host.has(.server) || host.has(.agent) }

    /// `<unit> <active state> <enabled state>` for both units.
    public func probe(for host: InventoryHost) -> String {
        "for u in k3s k3s-agent; do echo \"$u $(systemctl is-active $u 2>/dev/null) $(systemctl is-enabled $u 2>/dev/null)\"; done"
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard let k3s = context.inventory.k3s else { throw StepError("no k3s block in the inventory") }
        guard k3s.isAirgap else {
            throw StepError("online install (k3s.installScriptURL) is not supported yet; use k3s.airgap")
        }
        let unit = K3s.unit(for: context.host)
        var states: [String: (active: String, enabled: String)] = [:]
        for line in context.probe.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if let name = words.first { states[name] = (words.count > 1 ? words[1] : "", words.count > 2 ? words[2] : "") }
        }
        let state = states[unit] ?? ("", "")
        let installed = context.facts.versions.k3s
        if installed == k3s.version && state.active == "active" && state.enabled == "enabled" {
            return .ok("k3s \(k3s.version) running (\(unit).service active, enabled)")
        }
        let reason: String
        if let installed, installed != k3s.version {
            reason = "k3s \(installed) installed, inventory wants \(k3s.version)"
        } else if installed == nil {
            reason = "k3s is not installed"
        } else {
            reason = "\(unit).service is \(state.active.isEmpty ? "missing" : state.active), \(state.enabled.isEmpty ? "not installed" : state.enabled)"
        }
        let role = context.host.has(.server) ? "server" : "agent"
        // A binary swapped in by the assets step is not a change the script sees itself: force the restart.
        let force = installed != nil && installed != k3s.version ? "INSTALL_K3S_FORCE_RESTART=true " : ""
        let command = "INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=\(role) \(force)"
            + "timeout \(Self.installTimeout) sh \(K3s.installScript)"
        return .change(reason: reason, actions: [.run(command)])
    }
}
