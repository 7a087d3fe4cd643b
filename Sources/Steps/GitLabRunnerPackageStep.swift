import Facts
import Inventory
import ProvisionBasics

/// gitlab-runner from GitLab's apt repository (packages.gitlab.com/runner/gitlab-runner, or a mirror of it) at the
/// inventory's pinned release, as GitLab's install guide does it: the key in /etc/apt/keyrings, a deb822 source for
/// the host's codename and dpkg architecture, `apt-get install gitlab-runner=<v>-1 gitlab-runner-helper-images=<v>-1`.
/// Then the service enabled and running (`gitlab-runner status`), and with a docker executor the gitlab-runner user
/// in the docker group.
public struct GitLabRunnerPackageStep: Step {
    public static let unit = "gitlab-runner.service"
    public static let user = "gitlab-runner"
    /// The first release whose helper images come in their own package, installed beside gitlab-runner.
    static let firstWithHelperImages = [17, 7, 1]

    public let id = "gitlab-runner-package"
    public let summary = "gitlab-runner installed at the pinned release from GitLab's apt repository, service running"
    /// The docker group comes with Docker.
    public let dependsOn = ["base-packages", "docker"]
    public let gitlab: GitLabSettings?

    public init(gitlab: GitLabSettings?) {
        self.gitlab = gitlab
    }

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.runner) }

    var packages: [String] {
        guard let version = gitlab?.runnerPackage?.version, Self.hasHelperImages(version) else { return ["gitlab-runner"] }
        return ["gitlab-runner", "gitlab-runner-helper-images"]
    }

    static func hasHelperImages(_ version: String) -> Bool {
        let numbers = version.split(separator: ".").map { Int($0) ?? 0 }
        return numbers.lexicographicallyPrecedes(firstWithHelperImages) == false
    }

    /// The key and the source, `pkg` lines, apt's `policy` when a package is missing, `service <active> <enabled>`,
    /// `status <exit code of gitlab-runner status>` and `groups <groups of the gitlab-runner user, or ->`.
    public func probe(for host: InventoryHost) -> String {
        let user = ShellQuote.quote(Self.user)
        return AptSource(name: "gitlab-runner", keyURL: "", setting: "").probe + "\n"
            + Apt.packagesProbe(packages) + "\n" + Apt.policyProbe(packages) + "\n"
            + Systemd.stateLine(Self.unit, label: "service", properties: ["ActiveState", "UnitFileState"]) + "\n"
            + "if command -v gitlab-runner >/dev/null 2>&1; then gitlab-runner status >/dev/null 2>&1; echo \"status $?\"; fi\n"
            + "if id \(user) >/dev/null 2>&1; then echo \"groups $(id -nG \(user))\"; else echo 'groups -'; fi\ntrue"
    }

    public func desiredState(_ context: StepContext) -> String {
        [id, gitlab?.runnerPackage?.version ?? "", gitlab?.runnerPackage?.repository ?? "",
         gitlab?.usesDocker == true ? "docker-group" : "",
         (try? repository(context)).map { ManagedFile.digest($0.content) } ?? ""].joined(separator: "|")
    }

    func repository(_ context: StepContext) throws -> (source: AptSource, content: String) {
        let host = context.host.name
        let base = gitlab?.runnerPackage?.repository ?? RunnerPackageSettings.defaultAptRepository
        let source = AptSource(name: "gitlab-runner", keyURL: base + "/gpgkey",
                               setting: "gitlab.runnerPackage.aptRepository")
        let values = AptSource.values(
            host: host, uri: base + "/debian",
            suite: try AptSource.word(context.facts.os.versionCodename, "codename", host: host),
            architecture: try AptSource.word(context.facts.dpkgArch, "dpkg architecture", host: host),
            keyring: source.keyring, keyURL: source.keyURL)
        return (source, try context.templates.render("gitlab-runner.sources.mustache", values))
    }

    public func decide(_ context: StepContext) throws -> Decision {
        guard let version = gitlab?.runnerPackage?.version else {
            throw StepError("\(context.host.name) has the role runner, but the inventory pins no gitlab-runner release: "
                            + "set gitlab.runnerPackage.version (such as 17.7.1)")
        }
        let wanted = version + "-1"
        let lines = context.probe.split(separator: "\n").map(String.init)
        var reasons: [String] = []
        var actions: [Action] = []

        let (source, content) = try repository(context)
        let repository = try source.decide(content: content, lines: lines)
        reasons += repository.reasons
        actions += repository.actions

        let installed = Apt.packages(lines)
        let off = packages.filter { installed[$0]?.isInstalled != true || installed[$0]?.version != wanted }
        for name in off {
            let package = installed[name]
            reasons.append(package?.isInstalled == true ? "\(name) \(package?.version ?? "") installed, the inventory pins \(wanted)"
                           : "\(name) not installed")
        }
        let install = !off.isEmpty
        if install {
            let policies = Apt.policies(lines)
            if repository.refreshed || !packages.allSatisfy({ Apt.offers(policies, $0, version: wanted) }) {
                actions.append(.run(Apt.update()))
            }
            actions.append(.run(Apt.install(packages.map { "\($0)=\(wanted)" }, allowDowngrades: true)))
        } else if repository.refreshed {
            actions.append(.run(Apt.update()))
        }

        let service = (lines.first { $0.hasPrefix("service ") } ?? "").split(separator: " ").map(String.init)
        let active = service.count > 1 ? service[1] : "", enabled = service.count > 2 ? service[2] : ""
        let status = lines.last { $0.hasPrefix("status ") }.map { String($0.dropFirst(7)) }
        if enabled == "masked" {
            throw StepError("\(Self.unit) is masked on \(context.host.name), so no runner can run: unmask it "
                            + "(systemctl unmask \(Self.unit)) if this host is to run jobs")
        }
        let running = status == "0" && enabled == "enabled"
        if !install && !running {
            reasons.append("\(Self.unit) is \(active.isEmpty ? "unknown" : active) and "
                           + "\(enabled.isEmpty ? "not installed" : enabled)"
                           + (status.map { $0 == "0" ? "" : " (gitlab-runner status exits \($0))" } ?? ""))
        }
        if install || !running {
            // The package's postinst installs the unit; a package whose unit went missing gets it back the same way.
            if !install && (enabled.isEmpty || enabled == "not-found") {
                actions.append(.run("gitlab-runner install --user=\(ShellQuote.quote(Self.user)) "
                                    + "--working-directory=/home/\(Self.user)"))
            }
            actions += [.run("systemctl enable --now \(Self.unit)"), .awaitConvergence(timeout: 30)]
        }

        let groups = (lines.last { $0.hasPrefix("groups ") }.map { String($0.dropFirst(7)) } ?? "-")
            .split(separator: " ").map(String.init)
        if gitlab?.usesDocker == true, !groups.contains("docker") {
            if !install {
                reasons.append(groups == ["-"] ? "the \(Self.user) user is missing (the package's postinst makes it)"
                               : "\(Self.user) is not in the docker group (a runner uses the docker executor)")
            }
            actions.append(.run("usermod -aG docker \(ShellQuote.quote(Self.user))"))
        }

        if reasons.isEmpty && actions.isEmpty {
            let group = gitlab?.usesDocker == true ? ", \(Self.user) in the docker group" : ""
            return .ok("\(packages.joined(separator: " and ")) \(wanted) installed, \(Self.unit) enabled and running\(group)")
        }
        return .change(reason: reasons.joined(separator: "; "), actions: actions)
    }
}
