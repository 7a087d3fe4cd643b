import Foundation
import ProvisionBasics

/// A third-party apt repository given by its base URL: the host downloads the signing key into /etc/apt/keyrings
/// (curl to a temporary file, checked, renamed), and the deb822 source file comes from a template.
struct AptSource {
    /// Where apt looks for the key (`Signed-By`), e.g. /etc/apt/keyrings/docker.asc.
    var keyring: String
    var file: ManagedFile
    /// The key's address, such as https://download.docker.com/linux/debian/gpg.
    var keyURL: String
    /// The inventory setting that names the repository, for error messages.
    var setting: String

    init(name: String, keyURL: String, setting: String) {
        keyring = "/etc/apt/keyrings/\(name).asc"
        file = ManagedFile(path: "/etc/apt/sources.list.d/\(name).sources")
        self.keyURL = keyURL
        self.setting = setting
    }

    /// `keyring absent`, `keyring invalid` or `keyring present <octal mode>`; then `source <file probe>`.
    var probe: String {
        let k = ShellQuote.quote(keyring)
        return "if [ ! -e \(k) ]; then echo 'keyring absent'; "
            + "elif grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' \(k) 2>/dev/null; then echo \"keyring present $(stat -c %a \(k))\"; "
            + "else echo 'keyring invalid'; fi\nprintf 'source '; \(file.probe)"
    }

    /// The values every source template gets.
    static func values(host: String, uri: String, suite: String, architecture: String, keyring: String,
                       keyURL: String) -> [String: Any] {
        ["host": host, "uri": uri, "suite": suite, "architecture": architecture, "keyring": keyring, "keyURL": keyURL]
    }

    /// What to do about the key and the source file. `refreshed` says the lists must be read again (apt-get update).
    func decide(content: String, lines: [String]) throws -> (reasons: [String], actions: [Action], refreshed: Bool) {
        let key = (lines.first { $0.hasPrefix("keyring ") } ?? "keyring absent").split(separator: " ").map(String.init)
        let source = try ManagedFile.remote(String((lines.first { $0.hasPrefix("source ") } ?? "source absent").dropFirst(7)))
        var reasons: [String] = []
        var actions: [Action] = []
        let contentChanged = source?.digest != ManagedFile.digest(content)
        var keyFetched = false
        if key.count < 2 || key[1] != "present" {
            reasons.append(key.count > 1 && key[1] == "invalid" ? "\(keyring) is not an ASCII-armored PGP key"
                           : "\(keyring) is missing")
            actions.append(.run(download()))
            keyFetched = true
        } else if contentChanged {
            // Another repository (a mirror) may sign with another key: fetch it again with the new source.
            actions.append(.run(download()))
            keyFetched = true
        } else if let mode = key.count > 2 ? Int(key[2], radix: 8) : nil, mode & 0o004 == 0 {
            // apt reads keys as the unprivileged _apt user.
            reasons.append("\(keyring) is not readable by apt (mode \(key[2]))")
            actions.append(.run("chmod a+r \(ShellQuote.quote(keyring))"))
        }
        if case .change(let reason, let fix) = file.decide(content: content, remote: source) {
            reasons.append(reason)
            actions += fix
        }
        return (reasons, actions, contentChanged || keyFetched)
    }

    /// curl to a file beside the keyring, a check that a PGP key arrived (not an HTML page), then a rename. A failure
    /// names the URL and curl's last line, which is what the step's error shows.
    func download() -> String {
        let q = ShellQuote.quote
        let folder = (keyring as NSString).deletingLastPathComponent
        let partial = folder + "/." + (keyring as NSString).lastPathComponent + ".download"
        return "u=\(q(keyURL)); t=\(q(partial)); install -m 0755 -d \(q(folder)) && "
            + "if ! e=$(curl -fsSL --retry 3 --connect-timeout 30 --max-time 120 -o \"$t\" \"$u\" 2>&1); then rm -f \"$t\"; "
            + "echo \"cannot download the apt key from $u: $(printf '%s\\n' \"$e\" | tail -n 1)\" >&2; exit 1; fi; "
            + "if ! grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' \"$t\"; then rm -f \"$t\"; echo \"$u did not "
            + "return an ASCII-armored PGP public key: check \(setting)\" >&2; exit 1; fi; "
            + "chmod 0644 \"$t\" && mv -f \"$t\" \(q(keyring))"
    }

    /// A word from the host (codename, dpkg architecture) that goes into a source file: letters, digits, `.-_`.
    static func word(_ value: String?, _ what: String, host: String) throws -> String {
        guard let value, !value.isEmpty,
              value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else {
            throw StepError("the facts of \(host) have no usable \(what) (got \(value.map { "'\($0)'" } ?? "nothing")), "
                            + "which the apt source needs: check /etc/os-release and `dpkg --print-architecture` there")
        }
        return value
    }
}
