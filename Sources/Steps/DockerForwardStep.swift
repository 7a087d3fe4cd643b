import Facts
import Inventory
import ProvisionBasics

/// Docker beside k3s (k3s issues 1114 and 2260, flannel 1317): dockerd sets the iptables FORWARD policy to DROP each
/// time it starts, which drops the pod and service traffic a node routes. FORWARD stays DROP (it guards Docker's
/// containers); instead the k3s networks are accepted in DOCKER-USER, the chain Docker jumps to first from FORWARD.
/// A docker.service drop-in (from templates/) adds the rules after every Docker start, and they are added now too.
public struct DockerForwardStep: Step {
    public static let dropIn = ManagedFile(path: "/etc/systemd/system/docker.service.d/provision-k3s-forward.conf")
    public static let chain = "DOCKER-USER"
    /// k3s's own defaults, used when the k3s block's `config:` sets no cluster-cidr / service-cidr.
    public static let defaults = ["cluster-cidr": "10.42.0.0/16", "service-cidr": "10.43.0.0/16"]

    public let id = "k3s-docker-forward"
    public let summary = "k3s pod and service networks accepted in Docker's DOCKER-USER chain (drop-in, and now)"
    /// Where the `docker` step installs Docker (runner hosts), after it.
    public let dependsOn = ["base-packages", "docker"]

    /// Read once from the k3s block: the probe needs them and sees no inventory.
    let networks: Result<[Network], StepError>

    public init(k3s: K3sSettings) {
        do { networks = .success(try Self.networks(k3s)) } catch { networks = .failure(error) }
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    /// Only where Docker is next to a k3s node: its daemon or CLI found by the facts, or a runner host, which the
    /// `docker` step gives Docker earlier in the same run (so `plan` lists this step there too).
    public func applies(to host: InventoryHost, facts: HostFacts) -> Bool {
        concerns(host) && (facts.versions.docker != nil || host.has(.runner))
    }

    /// The drop-in's digest; then, where Docker is installed, `docker <active> <NeedDaemonReload>` and per iptables
    /// backend `chain <tool> present <FORWARD policy>` (or `absent`, `no-tool`) with `has|lacks <tool> <match>`.
    public func probe(for host: InventoryHost) -> String {
        var script = Self.dropIn.probe + "\n"
        // Hosts without Docker skip the rest: the step does not apply there.
        script += "command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1 || exit 0\n"
        script += Systemd.stateLine("docker.service", label: "docker", properties: ["ActiveState", "NeedDaemonReload"]) + "\n"
        let networks = (try? networks.get()) ?? []
        for family in Family.allCases where networks.contains(where: { $0.family == family }) {
            script += family.probe(matches: Self.rules(networks).filter { $0.network.family == family }.map(\.match))
        }
        return script
    }

    public func desiredState(_ context: StepContext) -> String {
        id + "|" + ((try? render(context)).map(ManagedFile.digest) ?? "unrenderable")
    }

    func render(_ context: StepContext) throws -> String {
        let rules = Self.rules(try networks.get())
        return try context.templates.render("docker-k3s-forward.conf.mustache", [
            "host": context.host.name,
            "networks": Self.describe(try networks.get().map(\.cidr)),
            "commands": rules.map { $0.ensure(tool: $0.network.family.tool) },
        ])
    }

    public func decide(_ context: StepContext) throws -> Decision {
        let lines = context.probe.split(separator: "\n").map(String.init)
        let rules = Self.rules(try networks.get())
        var reasons: [String] = []
        var actions: [Action] = []
        var notes: [String] = []

        let docker = (lines.first { $0.hasPrefix("docker ") } ?? "").split(separator: " ").map(String.init)
        switch Self.dropIn.decide(content: try render(context), remote: try ManagedFile.remote(lines.first ?? "")) {
        case .change(let reason, let fix):
            reasons.append(reason)
            actions += fix + [.run("systemctl daemon-reload")]
        case .ok(let reason):
            notes.append(reason)
            if docker.count > 2 && docker[2] == "yes" {
                reasons.append("docker.service has not loaded \(Self.dropIn.path) yet (NeedDaemonReload=yes)")
                actions.append(.run("systemctl daemon-reload"))
            }
        }

        let state = Self.read(lines)
        let primary = Family.allCases.filter { family in rules.contains { $0.network.family == family } }.map(\.tool)
        for tool in primary where state.chains[tool] == nil {
            notes.append("no \(tool) on the host: the drop-in adds the rules when Docker starts")
        }
        for (tool, chain) in state.chains.sorted(by: { $0.key < $1.key }) {
            guard let policy = chain else {
                if primary.contains(tool) {
                    let active = docker.count > 1 && !docker[1].isEmpty ? docker[1] : "unknown"
                    notes.append("no \(Self.chain) chain in \(Self.name(tool)) yet (docker.service \(active)): the drop-in adds the rules when Docker starts")
                }
                continue
            }
            let lacking = rules.filter { state.lacking.contains(Lack(tool: tool, match: $0.match)) }
            let family = rules.filter { Family.of(tool: tool) == $0.network.family }
            if lacking.isEmpty {
                notes.append("\(Self.chain) accepts \(Self.describe(Self.cidrs(family))) (\(Self.prefix(tool))FORWARD policy \(policy))")
                continue
            }
            reasons.append("\(Self.prefix(tool))FORWARD policy \(policy.isEmpty ? "unknown" : policy) and no ACCEPT for \(Self.missing(lacking)) in \(Self.chain)")
            actions += lacking.map { .run($0.ensure(tool: tool)) }
        }
        if reasons.isEmpty { return .ok(notes.joined(separator: "; ")) }
        return .change(reason: reasons.joined(separator: "; "), actions: actions)
    }

    // MARK: Networks and rules

    enum Family: CaseIterable {
        case ipv4, ipv6

        /// The command Docker itself runs: Debian's alternatives link, nf_tables or legacy.
        var tool: String { self == .ipv4 ? "/usr/sbin/iptables" : "/usr/sbin/ip6tables" }

        /// Where the kernel lists the legacy tables that exist (listing them with the legacy tool would create them).
        var legacyTables: String { self == .ipv4 ? "/proc/net/ip_tables_names" : "/proc/net/ip6_tables_names" }

        static func of(tool: String) -> Family { tool.hasPrefix("/usr/sbin/ip6tables") ? .ipv6 : .ipv4 }

        /// The chain and the rules in the backend `tool` uses, and in the other backend when it holds a chain too
        /// (Docker started before the alternative was switched): netfilter runs both, so a DROP in either drops.
        func probe(matches: [String]) -> String {
            let checks = matches.map { "c \($0)" }.joined(separator: "; ")
            return """
                t=\(tool); l=\(tool)-legacy
                c() { if $x -w -C \(DockerForwardStep.chain) "$@" -j ACCEPT 2>/dev/null; then echo "has $x $*"; else echo "lacks $x $*"; fi; }
                if [ -x $t ]; then
                  case "$($t -V 2>/dev/null)" in *legacy*) o=\(tool)-nft ;; *) o=$l ;; esac
                  for x in $t $o; do
                    [ $x = $t ] || [ -x $x ] || continue
                    if [ $x = $l ]; then f=; [ -r \(legacyTables) ] && while read -r n; do [ "$n" = filter ] && f=1; done < \(legacyTables); [ -n "$f" ] || continue; fi
                    if $x -w -S \(DockerForwardStep.chain) >/dev/null 2>&1; then
                      echo "chain $x present $($x -w -S FORWARD 2>/dev/null | sed -n 's/^-P FORWARD //p')"; \(checks)
                    else echo "chain $x absent"; fi
                  done
                else echo "chain $t no-tool"; fi

                """
        }
    }

    struct Network: Equatable {
        var cidr: String
        var family: Family
    }

    struct Rule: Equatable {
        var network: Network
        /// `-s` (from the network) or `-d` (to it).
        var direction: String

        var match: String { "\(direction) \(ShellQuote.quote(network.cidr))" }

        /// Idempotent: inserts the rule at the top of DOCKER-USER unless it is there already.
        func ensure(tool: String) -> String {
            "\(tool) -w -C \(DockerForwardStep.chain) \(match) -j ACCEPT 2>/dev/null || \(tool) -w -I \(DockerForwardStep.chain) \(match) -j ACCEPT"
        }
    }

    static func rules(_ networks: [Network]) -> [Rule] {
        networks.flatMap { [Rule(network: $0, direction: "-s"), Rule(network: $0, direction: "-d")] }
    }

    /// cluster-cidr then service-cidr, each a network or a comma-separated dual-stack pair, as k3s reads them.
    static func networks(_ k3s: K3sSettings) throws(StepError) -> [Network] {
        var networks: [Network] = []
        for key in ["cluster-cidr", "service-cidr"] {
            let texts: [String]
            switch k3s.config(key) {
            case nil: texts = [defaults[key] ?? ""]
            case .string(let value): texts = [value]
            case .list(let values): texts = values
            case .map: throw StepError("k3s config \(key) is a mapping: give a network such as \(defaults[key] ?? "") in the inventory's k3s config")
            }
            for text in texts.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
                let cidr = text.trimmingCharacters(in: .whitespaces)
                guard let family = family(ofCIDR: cidr) else {
                    throw StepError("k3s config \(key) '\(text)' is not a network in CIDR form (such as \(defaults[key] ?? "")): fix it in the inventory's k3s config")
                }
                let network = Network(cidr: cidr, family: family)
                if !networks.contains(network) { networks.append(network) }
            }
        }
        return networks
    }

    /// The family of `a.b.c.d/n` or an IPv6 network; nil for anything else (it reaches shells and unit files).
    static func family(ofCIDR text: String) -> Family? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let digits = { (text: Substring) in !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber } }
        guard parts.count == 2, digits(parts[1]), let prefix = Int(parts[1]) else { return nil }
        let address = parts[0]
        if !address.contains(":") {
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            let valid = octets.count == 4 && octets.allSatisfy { $0.count <= 3 && digits($0) && UInt8($0) != nil }
            return valid && prefix <= 32 ? .ipv4 : nil
        }
        let groups = address.split(separator: ":", omittingEmptySubsequences: false)
        let hex = address.allSatisfy { $0.isASCII && ($0.isHexDigit || $0 == ":") }
        let compressed = address.ranges(of: "::").count
        let valid = hex && compressed <= 1 && groups.count >= 3 && groups.count <= 8 + compressed
            && groups.allSatisfy { $0.count <= 4 } && (compressed == 1 || groups.count == 8)
        return valid && prefix <= 128 ? .ipv6 : nil
    }

    // MARK: Reading the probe

    struct Lack: Hashable {
        var tool: String
        var match: String
    }

    /// Per backend tool: nil when it has no DOCKER-USER chain, else the FORWARD policy; and the rules it lacks.
    static func read(_ lines: [String]) -> (chains: [String: String?], lacking: Set<Lack>) {
        var chains: [String: String?] = [:]
        var lacking = Set<Lack>()
        for line in lines {
            let words = line.split(separator: " ", maxSplits: 3).map(String.init)
            if words.count >= 3 && words[0] == "chain" {
                switch words[2] {
                case "present": chains[words[1]] = .some(words.count > 3 ? words[3] : "")
                case "absent": chains[words[1]] = .some(nil)
                default: break  // no-tool: not in `chains`
                }
            } else if words.count == 4 && words[0] == "lacks" {
                lacking.insert(Lack(tool: words[1], match: words[2] + " " + words[3]))
            }
        }
        return (chains, lacking)
    }

    // MARK: Words

    /// `iptables-legacy: ` for a backend other than Docker's; nothing for `/usr/sbin/iptables` itself.
    static func prefix(_ tool: String) -> String {
        tool == Family.ipv4.tool ? "" : name(tool) + ": "
    }

    static func name(_ tool: String) -> String { String(tool.split(separator: "/").last ?? "") }

    /// The rules' networks, each once, in order.
    static func cidrs(_ rules: [Rule]) -> [String] {
        var cidrs: [String] = []
        for rule in rules where !cidrs.contains(rule.network.cidr) { cidrs.append(rule.network.cidr) }
        return cidrs
    }

    static func describe(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + (items.last ?? "")
    }

    /// "10.42.0.0/16" when both directions are missing, "traffic to 10.43.0.0/16" when one is.
    static func missing(_ rules: [Rule]) -> String {
        describe(cidrs(rules).map { cidr in
            let directions = rules.filter { $0.network.cidr == cidr }.map(\.direction)
            return directions.count == 2 ? cidr : directions == ["-s"] ? "traffic from \(cidr)" : "traffic to \(cidr)"
        })
    }
}
