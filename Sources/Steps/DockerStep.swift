import Facts
import Inventory
import ProvisionBasics

/// Docker on the hosts with the role `runner`, as Docker's and Debian's install guides do it: docker.io from the
/// host's Debian sources, or docker-ce from Docker's apt repository (key in /etc/apt/keyrings, a deb822 source for the
/// host's codename and dpkg architecture), the packages that conflict with the chosen one removed first; then the
/// daemon enabled and running, and answering `docker version`.
public struct DockerStep: Step {
    /// Docker's packages from its own repository, in the order its guide installs them.
    public static let dockerCEPackages = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                                          "docker-compose-plugin"]
    /// What Docker's guide removes before installing docker-ce: Debian's Docker and what it brings.
    public static let conflictingWithDockerCE = ["docker.io", "docker-doc", "docker-compose", "podman-docker",
                                                 "containerd", "runc"]
    /// What stands in docker.io's way: Docker's own packages (containerd.io replaces Debian's containerd and runc).
    public static let conflictingWithDockerIO = dockerCEPackages + ["docker-ce-rootless-extras"]
    public static let unit = "docker.service"

    public let id = "docker"
    public let summary = "Docker installed (docker.io or docker-ce), its daemon enabled, running and answering"
    /// curl and the CA certificates fetch Docker's key.
    public let dependsOn = ["base-packages"]
    public let settings: DockerSettings

    public init(settings: DockerSettings = DockerSettings()) {
        self.settings = settings
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.runner) }

    var wanted: [String] { settings.package == .dockerIO ? ["docker.io"] : Self.dockerCEPackages }
    var conflicting: [String] {
        settings.package == .dockerIO ? Self.conflictingWithDockerIO : Self.conflictingWithDockerCE
    }

    /// The packages whose version is pinned, with that version.
    var pins: [String: String] {
        guard let version = settings.version else { return [:] }
        return settings.package == .dockerIO ? ["docker.io": version]
            : ["docker-ce": version, "docker-ce-cli": version]
    }

    /// `pkg` lines for the wanted and the conflicting packages, apt's `policy` when one is missing, the key and the
    /// source (docker-ce), `service <active> <enabled>` and `server <version>` (empty when the daemon does not answer).
    public func probe(for host: InventoryHost) -> String {
        var script = Apt.packagesProbe(wanted + conflicting) + "\n" + Apt.policyProbe(wanted) + "\n"
        if settings.package == .dockerCE {
            // The source's path does not depend on the host; its content is compared in `decide`.
            script += AptSource(name: "docker", keyURL: "", setting: "").probe + "\n"
        }
        script += Systemd.stateLine(Self.unit, label: "service", properties: ["ActiveState", "UnitFileState"]) + "\n"
        script += "if command -v docker >/dev/null 2>&1; then "
            + "echo \"server $(timeout 15 docker version --format '{{.Server.Version}}' 2>/dev/null)\"; fi\ntrue"
        return script
    }

    public func desiredState(_ context: StepContext) -> String {
        var parts = [id, settings.package.rawValue, settings.version ?? ""]
        if settings.package == .dockerCE {
            parts.append((try? repository(context)).map { ManagedFile.digest($0.content) } ?? "unrenderable")
        }
        return parts.joined(separator: "|")
    }

    /// Docker's repository for this host: the base URL, with /linux/raspbian for 32-bit Raspberry Pi OS.
    static func base(_ settings: DockerSettings, facts: HostFacts) -> String {
        let base = settings.repository
        guard facts.os.id == "raspbian", facts.dpkgArch == "armhf", base.hasSuffix("/debian") else { return base }
        return String(base.dropLast("/debian".count)) + "/raspbian"
    }

    /// docker-ce's key and source file, rendered for this host.
    func repository(_ context: StepContext) throws -> (source: AptSource, content: String) {
        let host = context.host.name
        let base = Self.base(settings, facts: context.facts)
        let source = AptSource(name: "docker", keyURL: base + "/gpg", setting: "docker.aptRepository")
        let values = AptSource.values(
            host: host, uri: base, suite: try AptSource.word(context.facts.os.versionCodename, "codename", host: host),
            architecture: try AptSource.word(context.facts.dpkgArch, "dpkg architecture", host: host),
            keyring: source.keyring, keyURL: source.keyURL)
        return (source, try context.templates.render("docker.sources.mustache", values))
    }

    public func decide(_ context: StepContext) throws -> Decision {
        let lines = context.probe.split(separator: "\n").map(String.init)
        let packages = Apt.packages(lines)
        var reasons: [String] = []
        var actions: [Action] = []

        let standing = conflicting.filter { packages[$0]?.isPresent == true }
        if !standing.isEmpty {
            reasons.append("\(standing.joined(separator: ", ")) installed, which \(settings.package.rawValue) replaces")
            actions.append(.run(Apt.remove(standing)))
        }

        var refresh = false
        if settings.package == .dockerCE {
            let (source, content) = try repository(context)
            let repository = try source.decide(content: content, lines: lines)
            reasons += repository.reasons
            actions += repository.actions
            refresh = repository.refreshed
        }

        let missing = wanted.filter { packages[$0]?.isInstalled != true }
        let drifted = pins.keys.sorted().filter { name in
            packages[name].map { $0.isInstalled && $0.version != pins[name] } ?? false
        }
        let install = !missing.isEmpty || !drifted.isEmpty
        if !missing.isEmpty { reasons.append("\(missing.joined(separator: ", ")) not installed") }
        for name in drifted {
            reasons.append("\(name) \(packages[name]?.version ?? "") installed, the inventory pins \(pins[name] ?? "")")
        }
        if install {
            let policies = Apt.policies(lines)
            if refresh || !wanted.allSatisfy({ Apt.offers(policies, $0, version: pins[$0]) }) {
                actions.append(.run(Apt.update()))
            }
            let specs = wanted.map { name in pins[name].map { "\(name)=\($0)" } ?? name }
            // Recommends bring apparmor, without which Docker cannot start containers on an AppArmor kernel.
            actions.append(.run(Apt.install(specs, recommends: true, allowDowngrades: !pins.isEmpty)))
        } else if refresh {
            // A new source is proven by reading it, even when nothing needs installing from it now.
            actions.append(.run(Apt.update()))
        }

        let service = (lines.first { $0.hasPrefix("service ") } ?? "").split(separator: " ").map(String.init)
        let active = service.count > 1 ? service[1] : "", enabled = service.count > 2 ? service[2] : ""
        if enabled == "masked" {
            throw StepError("\(Self.unit) is masked on \(context.host.name), so Docker cannot run: unmask it "
                            + "(systemctl unmask docker.service) if this runner host is to have Docker")
        }
        let server = lines.last { $0 == "server" || $0.hasPrefix("server ") }.map { $0.dropFirst(6).trimmingCharacters(in: .whitespaces) }
        let answers = server.map { !$0.isEmpty } ?? false
        if !install, active != "active" || enabled != "enabled" {
            reasons.append("\(Self.unit) is \(active.isEmpty ? "unknown" : active) and \(enabled.isEmpty ? "not installed" : enabled)")
        }
        if install || active != "active" || enabled != "enabled" {
            // The daemon takes a moment to answer after it starts.
            actions += [.run("systemctl enable --now \(Self.unit)"), .awaitConvergence(timeout: 60)]
        } else if !answers && reasons.isEmpty {
            return .change(reason: "\(Self.unit) is active, but `docker version` gets no answer from the daemon",
                           actions: [.awaitConvergence(timeout: 60)])
        }

        if reasons.isEmpty {
            let versions = wanted.prefix(1).map { "\($0) \(packages[$0]?.version ?? "")" }.joined()
            return .ok("\(versions) installed, \(Self.unit) active and enabled, the daemon answers (Docker Engine "
                       + "\(server ?? ""))")
        }
        return .change(reason: reasons.joined(separator: "; "), actions: actions)
    }
}
