import Foundation
import ProvisionBasics

/// apt-get and dpkg as an unattended run needs them, and reading back what dpkg and apt-cache say.
public enum Apt {
    /// No prompts, and a wait for the dpkg lock instead of failing when unattended-upgrades holds it.
    static let aptGet = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q"
    /// First finishes what an interrupted dpkg left half-configured, or every later apt-get refuses to run.
    static let configurePending = "{ DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true; }"

    public static func update() -> String {
        "\(configurePending) && \(aptGet) update"
    }

    /// `specs` are names or `name=version`; a pin below the installed version needs `allowDowngrades`.
    public static func install(_ specs: [String], recommends: Bool = false, allowDowngrades: Bool = false) -> String {
        "\(configurePending) && \(aptGet) install -y"
            + (recommends ? "" : " --no-install-recommends") + (allowDowngrades ? " --allow-downgrades" : "")
            + " " + ShellQuote.join(specs)
    }

    /// Removes the packages, keeping their configuration and data (Docker's images stay in /var/lib/docker).
    public static func remove(_ packages: [String]) -> String {
        "\(configurePending) && \(aptGet) remove -y \(ShellQuote.join(packages))"
    }

    // MARK: What dpkg has

    /// One package as dpkg knows it.
    public struct Package: Sendable, Equatable {
        /// dpkg's status abbreviation: `ii` is installed, `rc` removed with its configuration left, `iU` unpacked…
        public var status: String
        public var version: String

        /// Fully installed and configured.
        public var isInstalled: Bool { status.hasPrefix("ii") }
        /// On the disk in any state (unpacked, half-configured…): what would stand in a conflicting package's way.
        public var isPresent: Bool {
            let state = status.dropFirst().first
            return state != nil && state != "n" && state != "c"
        }
    }

    /// Prints `pkg <name> <status> <version>` for each of `packages` dpkg knows; unknown ones print nothing.
    static func packagesProbe(_ packages: [String]) -> String {
        "dpkg-query -W -f='pkg ${Package} ${db:Status-Abbrev} ${Version}\\n' \(ShellQuote.join(packages)) 2>/dev/null"
    }

    /// The `pkg` lines of a probe, by package name.
    static func packages(_ lines: [String]) -> [String: Package] {
        var packages: [String: Package] = [:]
        for line in lines where line.hasPrefix("pkg ") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count >= 3 else { continue }
            packages[words[1]] = Package(status: words[2], version: words.count > 3 ? words[3] : "")
        }
        return packages
    }

    // MARK: What apt's lists offer

    /// `apt-cache policy` of `packages`, each line prefixed `policy `, only when one of them is not installed (it
    /// reads every list, which takes long on a small board); a pin that drifted is then not looked up.
    static func policyProbe(_ packages: [String]) -> String {
        let names = ShellQuote.join(packages)
        return "n=$(dpkg-query -W -f='${db:Status-Abbrev}\\n' \(names) 2>/dev/null | grep -c '^ii'); "
            + "[ \"$n\" = \(packages.count) ] || LC_ALL=C apt-cache policy \(names) 2>/dev/null | sed 's/^/policy /'"
    }

    /// Per package: the versions apt's lists (or dpkg) know, and whether apt has a candidate to install at all.
    struct Policy: Equatable {
        var candidate: String?
        var versions: [String]
    }

    /// Reads the `policy` lines: nil when they were not printed (every package was installed).
    static func policies(_ lines: [String]) -> [String: Policy]? {
        let body = lines.filter { $0.hasPrefix("policy ") }.map { String($0.dropFirst(7)) }
        guard !body.isEmpty else { return nil }
        var policies: [String: Policy] = [:]
        var current: String?
        for line in body {
            if !line.hasPrefix(" "), line.hasSuffix(":") {
                current = String(line.dropLast())
                policies[current ?? ""] = Policy(candidate: nil, versions: [])
                continue
            }
            guard let name = current else { continue }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("Candidate:") {
                let candidate = text.dropFirst(10).trimmingCharacters(in: .whitespaces)
                policies[name]?.candidate = candidate == "(none)" ? nil : candidate
                continue
            }
            // Version lines are `[*** ]<version> <priority>`; source lines `<priority> <url or /var/lib/dpkg/status>…`.
            let words = (text.hasPrefix("*** ") ? String(text.dropFirst(4)) : text).split(separator: " ")
            if words.count == 2, words[1].allSatisfy(\.isNumber), !words[0].hasSuffix(":") {
                policies[name]?.versions.append(String(words[0]))
            }
        }
        return policies
    }

    /// Whether apt's lists offer `name` (at `version`, if given), per `policies`; false when unknown.
    static func offers(_ policies: [String: Policy]?, _ name: String, version: String?) -> Bool {
        guard let policy = policies?[name], policy.candidate != nil else { return false }
        return version.map(policy.versions.contains) ?? true
    }
}
