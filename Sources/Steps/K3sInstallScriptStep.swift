import Facts
import Foundation
import Inventory
import ProvisionBasics

/// Online install, procedure step 4's `curl -sfL https://get.k3s.io`: the host itself downloads the install script
/// from the inventory's `installScriptURL` (get.k3s.io or a mirror) and keeps it at `K3s.installScript`, with the URL
/// it came from recorded beside it. The script is renamed into place only once it is whole.
public struct K3sInstallScriptStep: Step {
    public static let defaultURL = "https://get.k3s.io"
    /// One line: the URL the script at `K3s.installScript` was downloaded from.
    public static let sourceFile = K3s.installScript + ".url"
    /// Where curl writes; a download cut short leaves only this behind, and the next one overwrites it.
    static let partialFile = "/usr/local/share/provision/.k3s-install.sh.download"

    public let id = "k3s-install-script"
    public let summary = "k3s install script downloaded by the host from installScriptURL (online install)"
    /// curl and the CA certificates come from base-packages.
    public let dependsOn = ["base-packages"]

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    /// `script` if the script exists, `replaced` if it changed after its URL was recorded, `url=<recorded URL>`.
    public func probe(for host: InventoryHost) -> String {
        let script = ShellQuote.quote(K3s.installScript), source = ShellQuote.quote(Self.sourceFile)
        return "if [ -f \(script) ]; then echo script; if [ -f \(source) ] && [ \(script) -nt \(source) ]; then "
            + "echo replaced; fi; fi; if [ -f \(source) ]; then IFS= read -r u < \(source) || true; "
            + "printf 'url=%s\\n' \"$u\"; fi; true"
    }

    public func desiredState(_ context: StepContext) -> String { id + "|" + Self.url(context.inventory) }

    static func url(_ inventory: Inventory) -> String { inventory.k3s?.installScriptURL ?? defaultURL }

    public func decide(_ context: StepContext) throws -> Decision {
        guard let k3s = context.inventory.k3s else { throw StepError("no k3s block in the inventory") }
        guard !k3s.isAirgap else { return .ok("airgap install: k3s-assets provides the install script") }
        let url = Self.url(context.inventory)
        let lines = context.probe.split(separator: "\n").map(String.init)
        let recorded = lines.last { $0.hasPrefix("url=") }.map { String($0.dropFirst(4)) }
        let reason: String
        if !lines.contains("script") {
            reason = "\(K3s.installScript) is missing"
        } else if recorded == nil {
            reason = "\(K3s.installScript) has no record of where it came from"
        } else if let recorded, recorded != url {
            reason = "\(K3s.installScript) came from \(recorded), the inventory wants \(url)"
        } else if lines.contains("replaced") {
            reason = "\(K3s.installScript) was replaced after its download from \(url)"
        } else {
            return .ok("\(K3s.installScript) downloaded from \(url)")
        }
        // The record is written after the script (and so is newer): a script newer than it was put there since.
        return .change(reason: reason, actions: [
            .run(Self.download(url)),
            .writeFile(path: Self.sourceFile, content: url + "\n", mode: 0o644, owner: "root:root"),
        ])
    }

    /// curl to a file beside the script, a check that a shell script arrived (not an HTML page), then a rename. A
    /// failure says which URL and what curl said, on its last line, which is what the step's error shows.
    static func download(_ url: String, to path: String = K3s.installScript, partial: String = partialFile) -> String {
        let q = ShellQuote.quote
        return "u=\(q(url)); t=\(q(partial)); mkdir -p \(q((path as NSString).deletingLastPathComponent)) && "
            + "if ! e=$(curl -fsSL --retry 3 --connect-timeout 30 --max-time 300 -o \"$t\" \"$u\" 2>&1); then rm -f \"$t\"; "
            + "echo \"cannot download the k3s install script from $u: $(printf '%s\\n' \"$e\" | tail -n 1)\" >&2; exit 1; fi; "
            + "if [ \"$(head -c 2 \"$t\")\" != '#!' ]; then rm -f \"$t\"; echo \"$u did not return a shell script "
            + "(it does not start with #!): check k3s.installScriptURL\" >&2; exit 1; fi; "
            + "chmod 0755 \"$t\" && mv -f \"$t\" \(q(path))"
    }
}
