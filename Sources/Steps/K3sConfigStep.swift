import Facts
import Inventory
import ProvisionBasics

/// /etc/rancher/k3s/config.yaml from templates/ (0600: it holds the token): server or join address, token,
/// node name, labels, taints, tls-san, disabled components and the inventory's free-form `config:`. A change
/// restarts that node's k3s, and nothing else.
public struct K3sConfigStep: Step {
    public static let file = ManagedFile(path: K3s.configFile, mode: 0o600, owner: "root:root")

    public let id = "k3s-config"
    public let summary = "k3s config.yaml (token, server, labels, taints, tls-san) from a template"
    public let dependsOn = ["k3s-token"]
    /// The token first; then servers change one at a time, behind the servers before them.
    public let waitsFor = [RemoteDependency(step: "k3s-token", on: .firstServer),
                           RemoteDependency(step: "k3s-service", on: .precedingServers)]

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    /// The file's digest, then whether a k3s unit is installed (a change must then restart it).
    public func probe(for host: InventoryHost) -> String {
        Self.file.probe + "; for u in k3s k3s-agent; do [ -f /etc/systemd/system/$u.service ] && echo \"unit=$u\"; done; true"
    }

    public func desiredState(_ context: StepContext) -> String {
        id + "|" + ((try? render(context)).map(ManagedFile.digest) ?? "unrenderable")
    }

    func render(_ context: StepContext) throws -> String {
        let inventory = context.inventory, host = context.host
        guard let k3s = inventory.k3s else { throw StepError("no k3s block in the inventory") }
        guard let token = K3s.token(context) else {
            throw StepError("the cluster token is not known: include the first server (\(inventory.firstServer?.name ?? "none")) in the run, or set k3s.token in the inventory")
        }
        let first = inventory.firstServer?.name == host.name
        let isServer = host.has(.server)
        var tlsSan: [String] = []
        if isServer {
            tlsSan = k3s.tlsSan
            for address in [inventory.firstServer?.address, host.address].compactMap({ $0 }) where !tlsSan.contains(address) {
                tlsSan.append(address)
            }
        }
        let values: [String: Any] = [
            "nodeName": YAMLText.quote(host.nodeName),
            "host": host.name,
            "role": isServer ? (first ? "first server" : "server") : "agent",
            "token": YAMLText.quote(token),
            // Mustache treats "" as present: absent values are false.
            "server": first ? false : YAMLText.quote(K3s.serverURL(inventory) ?? "") as Any,
            "clusterInit": first && inventory.servers.count >= 3,
            "hasLabels": !host.labels.isEmpty,
            "labels": host.labels.map { YAMLText.quote("\($0.key)=\($0.value)") },
            "hasTaints": !host.taints.isEmpty,
            "taints": host.taints.map(YAMLText.quote),
            "hasTlsSan": !tlsSan.isEmpty,
            "tlsSan": tlsSan.map(YAMLText.quote),
            "hasDisable": isServer && !k3s.disable.isEmpty,
            "disable": isServer ? k3s.disable.map(YAMLText.quote) : [],
            "writeKubeconfigMode": isServer ? (k3s.writeKubeconfigMode.map(YAMLText.quote) ?? false) as Any : false,
            "extra": YAMLText.render(k3s.config),
        ]
        return try context.templates.render("k3s-config.yaml.mustache", values)
    }

    public func decide(_ context: StepContext) throws -> Decision {
        let lines = context.probe.split(separator: "\n").map(String.init)
        let content = try render(context)
        let decision = Self.file.decide(content: content, remote: try ManagedFile.remote(lines.first ?? ""))
        guard case .change(let reason, let actions) = decision else { return decision }
        let unit = K3s.unit(for: context.host)
        if lines.contains("unit=\(unit)") {
            return .change(reason: reason, actions: [.disruptive(group: K3s.group(for: context.host))] + actions
                           + [.run("systemctl restart \(unit)")])
        }
        return decision
    }
}

/// YAML for config.yaml: every string single-quoted, so nothing in a value changes its meaning.
enum YAMLText {
    static func quote(_ value: String) -> String { "'" + value.replacing("'", with: "''") + "'" }

    /// Keys are k3s flag names; plain when they are plain.
    static func key(_ name: String) -> String {
        name.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } ? name : quote(name)
    }

    static func render(_ entries: [ConfigEntry], indent: String = "") -> String {
        entries.map { entry in
            switch entry.value {
            case .string(let value): "\(indent)\(key(entry.key)): \(quote(value))"
            case .list(let values): "\(indent)\(key(entry.key)):\n" + values.map { "\(indent)  - \(quote($0))" }.joined(separator: "\n")
            case .map(let nested): "\(indent)\(key(entry.key)):\n" + render(nested, indent: indent + "  ")
            }
        }.joined(separator: "\n")
    }
}
