import Foundation

/// The lab's services namespace (10.250.K.9): an HTTP server on port 8080 for what hosts would fetch from the
/// internet, such as the k3s mirror below `k3sMirrorURL`. docs/lab.md describes it.
extension Lab {
    /// The services namespace's address, e.g. 10.250.3.9.
    public var servicesAddress: String { environmentValue("LAB_SERVICES_ADDRESS") }
    /// http://10.250.K.9:8080
    public var servicesURL: String { environmentValue("LAB_SERVICES_URL") }
    /// The k3s mirror's base URL (http://10.250.K.9:8080/k3s): `/install.sh`, `/releases/download/<v>/<asset>`.
    public var k3sMirrorURL: String { environmentValue("LAB_K3S_MIRROR") }

    /// Adds k3s releases (stand-in bundles) to the mirror and writes its install.sh (`scripts/lab mirror`).
    public func mirrorK3s(_ versions: [String]) throws {
        let result = try run(Repo.labScript, ["mirror", "--dir", directory] + versions)
        guard result.status == 0 else { throw LabError.commandFailed(command: "scripts/lab mirror", output: result) }
    }

    /// The HTTP server's request log, one line per request: `<client> "<METHOD> <path> HTTP/x" <status> <bytes>`.
    public var servicesLog: [String] {
        let text = (try? String(contentsOfFile: directory + "/services/http.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// A value of DIR/lab.env (KEY=VALUE lines), or "" if it is not there.
    func environmentValue(_ key: String) -> String {
        let text = (try? String(contentsOfFile: directory + "/lab.env", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(key + "=") {
            return String(line.dropFirst(key.count + 1))
        }
        return ""
    }
}
