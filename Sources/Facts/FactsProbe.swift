import Foundation

/// Facts come from ONE shell script per host (one round trip) that prints `key=value` lines, and a pure parser.
public enum FactsProbe {
    /// POSIX sh; reads only, needs no root, and prints every key even when its value is empty.
    public static let script = #"""
p() { printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n\r' '  ')"; }
p hostname "$(cat /proc/sys/kernel/hostname 2>/dev/null)"
( . /etc/os-release 2>/dev/null; p os.id "${ID:-}"; p os.versionId "${VERSION_ID:-}"; p os.versionCodename "${VERSION_CODENAME:-}"; p os.prettyName "${PRETTY_NAME:-}" )
p arch "$(uname -m 2>/dev/null)"
p dpkgArch "$(dpkg --print-architecture 2>/dev/null)"
p kernel "$(uname -r 2>/dev/null)"
p board "$( (cat /proc/device-tree/model 2>/dev/null || cat /sys/firmware/devicetree/base/model 2>/dev/null) | tr -d '\000')"
p memTotalKiB "$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo 2>/dev/null)"
p cgroupMemory "$(awk '$1 == "memory" { print $4 }' /proc/cgroups 2>/dev/null)"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then p cgroupVersion 2; p cgroupControllers "$(cat /sys/fs/cgroup/cgroup.controllers)"; else p cgroupVersion 1; p cgroupControllers ""; fi
p bootId "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
p cmdline "$(cat /proc/cmdline 2>/dev/null)"
p k3s "$(k3s --version 2>/dev/null | head -n 1)"
p docker "$( (dockerd --version || docker --version) 2>/dev/null | head -n 1)"
p gitlabRunner "$(gitlab-runner --version 2>/dev/null | sed -n 's/^Version: *//p' | head -n 1)"
p end ok
"""#

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Turns the script's output into facts. Fails only when the output is not the script's (e.g. cut short).
    public static func parse(_ output: String) throws -> HostFacts {
        var values: [String: String] = [:]
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            values[String(line[..<equals])] = value
        }
        guard values["end"] == "ok" else {
            throw ParseError(description: "the facts script's output was cut short or not recognised")
        }
        func text(_ key: String) -> String? {
            guard let value = values[key], !value.isEmpty else { return nil }
            return value
        }
        var facts = HostFacts()
        facts.hostname = text("hostname")
        facts.os = HostFacts.OS(id: text("os.id"), versionId: text("os.versionId"),
                                versionCodename: text("os.versionCodename"), prettyName: text("os.prettyName"))
        facts.arch = text("arch")
        facts.dpkgArch = text("dpkgArch")
        facts.kernel = text("kernel")
        facts.board = text("board")
        facts.memoryBytes = text("memTotalKiB").flatMap { Int($0) }.map { $0 * 1024 }
        facts.cgroupVersion = text("cgroupVersion").flatMap { Int($0) }
        if let enabled = text("cgroupMemory") {
            facts.memoryCgroup = enabled == "1"
        } else if let controllers = text("cgroupControllers") {
            facts.memoryCgroup = controllers.split(separator: " ").contains("memory")
        }
        facts.bootId = text("bootId")
        facts.kernelCmdline = text("cmdline")
        facts.versions = HostFacts.Versions(k3s: text("k3s").flatMap(k3sVersion),
                                            docker: text("docker").flatMap(dockerVersion),
                                            gitlabRunner: text("gitlabRunner"))
        return facts
    }

    /// `k3s version v1.32.5+k3s1 (8e8f2a47)` → `v1.32.5+k3s1`.
    static func k3sVersion(_ line: String) -> String? {
        let words = line.split(separator: " ")
        guard words.count >= 3, words[0] == "k3s", words[1] == "version" else { return nil }
        return String(words[2])
    }

    /// `Docker version 20.10.24+dfsg1, build 297e128` → `20.10.24+dfsg1`.
    static func dockerVersion(_ line: String) -> String? {
        let words = line.split(separator: " ")
        guard words.count >= 3, words[1] == "version" else { return nil }
        return String(words[2].trimmingCharacters(in: CharacterSet(charactersIn: ",")))
    }
}
