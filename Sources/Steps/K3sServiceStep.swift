import Facts
import Inventory
import ProvisionBasics

/// Procedure step 4: the k3s install script (from the airgap folder, or online at the pinned version) installs and
/// starts `k3s` on servers and `k3s-agent` on agents;
/// config.yaml already carries the server address and token, so no secret is on a command line. Servers go one at
/// a time, each gated on its API answering /readyz and its node Ready; agents follow in parallel. A node that runs
/// the wanted version is left alone; an upgrade of a running agent drains it first (at most --max-unavailable at
/// once) and uncordons it after.
public struct K3sServiceStep: Step {
    public let id = "k3s-service"
    public let summary = "k3s installed at the pinned version and running (server or agent)"
    public let dependsOn = ["pi-cgroups", "kernel-forwarding", "k3s-assets", "k3s-install-script", "k3s-config"]
    public let waitsFor = [RemoteDependency(step: "k3s-service", on: .precedingServers)]
    /// The install script waits for k3s to report ready; a wrong token would make it wait forever.
    public static let installTimeout = 300
    /// How long a server may take, once started, to answer /readyz with its node Ready.
    public static let readyTimeout = 180.0
    /// Binary newer than the running process by more than this (seconds): k3s runs a replaced binary.
    static let staleMargin = 2

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    /// `<unit> <active> <enabled> stale=<0|1>` for both units (stale: k3s-assets replaced the binary since k3s last
    /// restarted through this step, or the binary on disk is newer than the running process); on a server with k3s active, `readyz=` and `node=` (its Ready status).
    public func probe(for host: InventoryHost) -> String {
        var script = """
            now=$(date +%s); bin=$(stat -c %Y /usr/local/bin/k3s 2>/dev/null || echo 0)
            units=$(\(Systemd.serviceLines(["k3s.service", "k3s-agent.service"])) | while read -r u pid active enabled; do
              stale=0
              if [ "$pid" != 0 ]; then
                age=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')
                [ -n "$age" ] && [ "$bin" -gt $((now - age + \(Self.staleMargin))) ] && stale=1
              fi
              [ -e \(K3s.restartPending) ] && stale=1
              echo "$u $active $enabled stale=$stale"
            done)
            [ -z "$units" ] || printf '%s\\n' "$units"
            """
        if host.has(.server) {
            // Whether k3s is active comes from the lines above (k3s's first: `show` answers in the order asked),
            // not from a second systemctl.
            let ready = ShellQuote.quote("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
            script += """

                case "$units" in "k3s active "*)
                  echo "readyz=$(k3s kubectl get --raw=/readyz 2>&1 | tail -n 1 | cut -c1-200)"
                  echo "node=$(k3s kubectl get node \(ShellQuote.quote(host.nodeName)) -o \(ready) 2>&1 | tail -n 1 | cut -c1-200)" ;;
                esac
                """
        }
        return script
    }

    struct State: Equatable {
        var active = ""
        var enabled = ""
        var stale = false
        var readyz: String?
        var node: String?

        var running: Bool { active == "active" && enabled == "enabled" }
    }

    static func state(_ probe: String, unit: String) -> State {
        var state = State()
        for line in probe.split(separator: "\n").map(String.init) {
            if line.hasPrefix("readyz=") { state.readyz = String(line.dropFirst(7)) }
            if line.hasPrefix("node=") { state.node = String(line.dropFirst(5)) }
            let words = line.split(separator: " ").map(String.init)
            guard words.first == unit else { continue }
            for word in words.dropFirst() {
                if word.hasPrefix("stale=") { state.stale = word == "stale=1" } else if state.active.isEmpty {
                    state.active = word
                } else if state.enabled.isEmpty { state.enabled = word }
            }
        }
        return state
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard let k3s = context.inventory.k3s else { throw StepError("no k3s block in the inventory") }
        let host = context.host
        let unit = K3s.unit(for: host)
        let state = Self.state(context.probe, unit: unit)
        let installed = context.facts.versions.k3s
        let current = installed == k3s.version && state.running && !state.stale
        if current {
            guard host.has(.server) else { return .ok("k3s \(k3s.version) running (\(unit).service active, enabled)") }
            if state.readyz == "ok" && state.node == "True" {
                return .ok("k3s \(k3s.version) running (\(unit).service active, enabled; API ready, node Ready)")
            }
            let waiting = state.readyz != "ok" ? "the API does not answer /readyz yet (\(state.readyz ?? "no answer"))"
                : "node \(host.nodeName) is not Ready yet (\(state.node ?? "not registered"))"
            return .change(reason: waiting, actions: [.awaitConvergence(timeout: Self.readyTimeout)])
        }
        let reason: String
        if let installed, installed != k3s.version {
            reason = "k3s \(installed) installed, inventory wants \(k3s.version)"
        } else if installed == nil {
            reason = "k3s is not installed"
        } else if state.stale && state.active == "active" {
            reason = "\(unit).service still runs the k3s binary that was replaced; it must restart on \(k3s.version)"
        } else {
            reason = "\(unit).service is \(state.active.isEmpty ? "missing" : state.active), \(state.enabled.isEmpty ? "not installed" : state.enabled)"
        }
        // The script restarts k3s only when its own hashes changed; a binary swapped in beforehand (airgap upgrade)
        // or a stopped unit needs the forced restart.
        let force = installed != nil ? "INSTALL_K3S_FORCE_RESTART=true " : ""
        let role = host.has(.server) ? "server" : "agent"
        let source = k3s.isAirgap ? "INSTALL_K3S_SKIP_DOWNLOAD=true" : "INSTALL_K3S_VERSION=\(ShellQuote.quote(k3s.version))"
        let install = Action.run("\(source) INSTALL_K3S_EXEC=\(role) \(force)"
            + "timeout \(Self.installTimeout) sh \(K3s.installScript) && rm -f \(K3s.restartPending)")
        // Restarting a running server: one at a time. Upgrading a running agent: drained first, at most
        // --max-unavailable at once; repairing one (unit stopped or deleted) restarts it in place.
        if host.has(.server) {
            return .change(reason: reason, actions: (state.active == "active" ? [.disruptive(group: K3s.serversGroup)] : [])
                           + [install, .awaitConvergence(timeout: Self.readyTimeout)])
        }
        let upgrading = installed != nil && (installed != k3s.version || state.stale)
        guard upgrading, state.active == "active", let server = context.inventory.firstServer else {
            return .change(reason: reason, actions: [install])
        }
        let node = ShellQuote.quote(host.nodeName)
        let drain = "k3s kubectl cordon \(node) && k3s kubectl annotate --overwrite node \(node) \(K3s.drainedAnnotation)=upgrade"
            + " && k3s kubectl drain \(node) --ignore-daemonsets --delete-emptydir-data --timeout=300s"
        let uncordon = "k3s kubectl uncordon \(node) && k3s kubectl annotate node \(node) \(K3s.drainedAnnotation)-"
        return .change(reason: reason, actions: [.disruptive(group: K3s.agentsGroup), .runOn(host: server.name, command: drain),
                                                 install, .runOn(host: server.name, command: uncordon)])
    }
}
