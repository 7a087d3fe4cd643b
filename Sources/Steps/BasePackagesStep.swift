import Facts
import Inventory
import ProvisionBasics

/// Procedure step 1, "Prepare Debian hosts": the packages every later step relies on, installed with apt-get.
public struct BasePackagesStep: Step {
    public static let packages = ["ca-certificates", "curl", "iptables", "gnupg"]

    public let id = "base-packages"
    public let summary = "required packages present (apt-get)"
    public let packages: [String]

    public init(packages: [String] = BasePackagesStep.packages) {
        self.packages = packages
    }

    /// One line per package: `<name> <status abbreviation>`, e.g. `curl ii `; unknown packages print nothing.
    public func probe(for host: InventoryHost) -> String {
        "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' \(ShellQuote.join(packages)) 2>/dev/null; true"
    }

    public func desiredState(_ context: StepContext) -> String { id + "|" + packages.joined(separator: ",") }

    public func decide(_ context: StepContext) throws -> Decision {
        let installed = Set(context.probe.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            return words.count >= 2 && words[1].hasPrefix("ii") ? String(words[0]) : nil
        })
        let missing = packages.filter { !installed.contains($0) }
        if missing.isEmpty { return .ok("\(packages.joined(separator: ", ")) installed") }
        return .change(reason: "missing packages: \(missing.joined(separator: ", "))",
                       actions: [.run(Self.install(missing))])
    }

    /// apt-get as an unattended run needs it: no prompts, no recommends, a lock-wait instead of failing when
    /// unattended-upgrades holds dpkg, and first finishing what an interrupted dpkg left half-configured.
    public static func install(_ packages: [String]) -> String {
        let apt = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -q"
        return "{ DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true; } && \(apt) update && "
            + "\(apt) install -y --no-install-recommends \(ShellQuote.join(packages))"
    }
}
