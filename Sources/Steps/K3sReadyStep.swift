import Facts
import Foundation
import Inventory
import ProvisionBasics

/// Procedure step 4's last check, on the first server: `kubectl get nodes` lists every inventory host with a k3s
/// role under its node name, Ready, at the pinned version, with its labels (and control-plane on servers). It waits
/// for the others, and uncordons a node an interrupted upgrade left cordoned (only one provision cordoned).
public struct K3sReadyStep: Step {
    public let id = "k3s-ready"
    public let summary = "every k3s node Ready with its labels (kubectl get nodes on the first server)"
    public let dependsOn = ["k3s-service"]
    public let waitsFor = [RemoteDependency(step: "k3s-service", on: .everyHost)]
    public static let timeout = 180.0
    /// Ends an ok message when the cluster has nodes the inventory does not list (`verify` fails on it).
    public static let extraNodesWarning = "; warning: Ready nodes not in the inventory: "

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) }

    public func probe(for host: InventoryHost) -> String {
        "if command -v k3s >/dev/null 2>&1; then k3s kubectl get nodes -o json 2>&1; fi; true"
    }

    public func decide(_ context: StepContext) throws -> Decision {
        // Only the first server speaks for the cluster; other servers have nothing to add.
        guard context.inventory.firstServer?.name == context.host.name else { return .ok("checked on the first server") }
        let wanted = context.inventory.hosts.filter { $0.has(.server) || $0.has(.agent) }
        let nodes = Self.nodes(context.probe)
        let leftOver = wanted.map(\.nodeName).filter { nodes[$0]?.drainedByProvision == true }
        if !leftOver.isEmpty {
            let commands = leftOver.map { name in
                "k3s kubectl uncordon \(ShellQuote.quote(name)) && k3s kubectl annotate node \(ShellQuote.quote(name)) \(K3s.drainedAnnotation)-"
            }
            return .change(reason: "node(s) \(leftOver.joined(separator: ", ")) still cordoned by an earlier upgrade",
                           actions: commands.map(Action.run) + [.awaitConvergence(timeout: Self.timeout)])
        }
        var problems: [String] = []
        for host in wanted {
            guard let node = nodes[host.nodeName] else {
                problems.append("node \(host.nodeName) is not registered")
                continue
            }
            if node.ready != "True" {
                problems.append("node \(host.nodeName) is not Ready: \(node.message.isEmpty ? node.ready : node.message)")
            }
            if let version = context.inventory.k3s?.version, let running = node.version, running != version {
                problems.append("node \(host.nodeName) runs \(running), inventory wants \(version)")
            }
            for label in host.labels where node.labels[label.key] != label.value {
                problems.append("node \(host.nodeName) lacks label \(label.key)=\(label.value)")
            }
            if host.has(.server) && node.labels["node-role.kubernetes.io/control-plane"] == nil {
                problems.append("node \(host.nodeName) is not a control-plane node")
            }
        }
        if problems.isEmpty {
            let extra = Set(nodes.keys).subtracting(wanted.map(\.nodeName)).sorted()
            let warning = extra.isEmpty ? "" : Self.extraNodesWarning + extra.joined(separator: ", ")
            return .ok("\(wanted.count) node(s) Ready with their labels\(warning)")
        }
        return .change(reason: problems.joined(separator: "; "), actions: [.awaitConvergence(timeout: Self.timeout)])
    }

    struct Node {
        var ready = "Unknown"
        var message = ""
        var labels: [String: String] = [:]
        var version: String?
        var drainedByProvision = false
    }

    /// Nodes by name from `kubectl get nodes -o json`; anything else (the API not up yet) is no nodes.
    static func nodes(_ json: String) -> [String: Node] {
        guard let start = json.firstIndex(of: "{"),
              let object = try? JSONSerialization.jsonObject(with: Data(json[start...].utf8)) as? [String: Any],
              let items = object["items"] as? [[String: Any]] else { return [:] }
        var nodes: [String: Node] = [:]
        for item in items {
            let metadata = item["metadata"] as? [String: Any] ?? [:]
            guard let name = metadata["name"] as? String else { continue }
            var node = Node(labels: metadata["labels"] as? [String: String] ?? [:])
            let annotations = metadata["annotations"] as? [String: String] ?? [:]
            let unschedulable = (item["spec"] as? [String: Any])?["unschedulable"] as? Bool ?? false
            node.drainedByProvision = unschedulable && annotations[K3s.drainedAnnotation] != nil
            node.version = ((item["status"] as? [String: Any])?["nodeInfo"] as? [String: Any])?["kubeletVersion"] as? String
            let conditions = (item["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
            if let ready = conditions.first(where: { $0["type"] as? String == "Ready" }) {
                node.ready = ready["status"] as? String ?? "Unknown"
                node.message = ready["message"] as? String ?? ""
            }
            nodes[name] = node
        }
        return nodes
    }
}
