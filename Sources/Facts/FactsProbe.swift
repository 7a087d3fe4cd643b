import Foundation
import ProvisionBasics

/// Facts come from ONE shell script per host (one round trip) that prints `key=value` lines, and a pure parser.
public enum FactsProbe {
    /// POSIX sh; reads only, needs no root, prints every key even when empty, and forks as little as it can
    /// (builtins read the /proc files): on a small board each fork is milliseconds of the host's CPU.
    public static let script = script(knowing: [:])

    /// The script; a program in `known` (by facts key) whose `stat` identity is still the one recorded there is not
    /// run again for its version: `k3s --version` alone is tens of milliseconds of a host's CPU at every read.
    public static func script(knowing known: [String: ProgramVersion]) -> String {
        base + programs.map { program in
            // `command -v` is a builtin: a host without the program forks nothing for it.
            let find = "for c in \(program.names.joined(separator: " ")); do command -v $c >/dev/null 2>&1 && { b=$(command -v $c); break; }; done"
            let memo = known[program.key]
            return "v=; i=; b=; \(find); if [ -n \"$b\" ]; then i=$(stat -L -c '%d %i %s %y %z' \"$b\" 2>/dev/null); "
                + "if [ -n \"$i\" ] && [ \"$i\" = \(ShellQuote.quote(memo?.identity ?? "")) ]; then v=\(ShellQuote.quote(memo?.value ?? "")); "
                + "else v=$(\(program.version)); fi; fi; p \(program.key) \"$v\"; p \(program.key).identity \"$i\"\n"
        }.joined() + "p end ok\n"
    }

    /// The programs whose versions are facts: the facts key, the names looked up on PATH (first found), and how
    /// the found one (`$b`) prints its version.
    static let programs: [(key: String, names: [String], version: String)] = [
        ("k3s", ["k3s"], "\"$b\" --version 2>/dev/null"),
        ("docker", ["dockerd", "docker"], "\"$b\" --version 2>/dev/null"),
        ("gitlabRunner", ["gitlab-runner"], "\"$b\" --version 2>/dev/null | sed -n 's/^Version: *//p'"),
    ]

    static let base = #"""
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
        for program in programs {
            if let identity = text(program.key + ".identity"), let value = text(program.key) {
                facts.programs[program.key] = ProgramVersion(identity: identity, value: value)
            }
        }
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
