import Foundation

/// Facts come from ONE shell script per host (one round trip) that prints `key=value` lines, and a pure parser.
public enum FactsProbe {
    /// POSIX sh; reads only, needs no root, prints every key even when empty, and forks as little as it can
    /// (builtins read the /proc files): on a small board each fork is milliseconds of the host's CPU.
    public static let script = #"""
nl='
'
p() { v=$2; v=${v%%"$nl"*}; printf '%s=%s\n' "$1" "$v"; }
r() { v=; [ -r "$1" ] && IFS= read -r v < "$1"; printf '%s' "$v"; }
h=; [ -r /proc/sys/kernel/hostname ] && IFS= read -r h < /proc/sys/kernel/hostname; p hostname "$h"
ID= VERSION_ID= VERSION_CODENAME= PRETTY_NAME=; [ -r /etc/os-release ] && . /etc/os-release
p os.id "$ID"; p os.versionId "$VERSION_ID"; p os.versionCodename "$VERSION_CODENAME"; p os.prettyName "$PRETTY_NAME"
set -- $(uname -r -m 2>/dev/null); p kernel "${1:-}"; p arch "${2:-}"
p dpkgArch "$(dpkg --print-architecture 2>/dev/null)"
m=; for f in /proc/device-tree/model /sys/firmware/devicetree/base/model; do [ -r "$f" ] && { m=$(tr -d '\000' < "$f"); break; }; done; p board "$m"
k=; while read -r a b c; do [ "$a" = MemTotal: ] && { k=$b; break; }; done < /proc/meminfo; p memTotalKiB "$k"
e=; [ -r /proc/cgroups ] && while read -r a b c d; do [ "$a" = memory ] && { e=$d; break; }; done < /proc/cgroups; p cgroupMemory "$e"
if [ -r /sys/fs/cgroup/cgroup.controllers ]; then p cgroupVersion 2; p cgroupControllers "$(r /sys/fs/cgroup/cgroup.controllers)"; else p cgroupVersion 1; p cgroupControllers ""; fi
b=; [ -r /proc/sys/kernel/random/boot_id ] && read -r b < /proc/sys/kernel/random/boot_id; p bootId "$b"
c=; [ -r /proc/cmdline ] && IFS= read -r c < /proc/cmdline; p cmdline "$c"
v=; command -v k3s >/dev/null 2>&1 && v=$(k3s --version 2>/dev/null); p k3s "$v"
v=; if command -v dockerd >/dev/null 2>&1; then v=$(dockerd --version 2>/dev/null); elif command -v docker >/dev/null 2>&1; then v=$(docker --version 2>/dev/null); fi; p docker "$v"
v=; command -v gitlab-runner >/dev/null 2>&1 && v=$(gitlab-runner --version 2>/dev/null | sed -n 's/^Version: *//p'); p gitlabRunner "$v"
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
