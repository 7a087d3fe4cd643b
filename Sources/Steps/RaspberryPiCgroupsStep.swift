import Facts
import Inventory

/// Procedure step 1 on a Pi: k3s needs the memory cgroup, which Raspberry Pi OS leaves off. Append the flags to
/// the one line of cmdline.txt and reboot, only if the file changed (or the running kernel has not seen them).
public struct RaspberryPiCgroupsStep: Step {
    public static let flags = ["cgroup_memory=1", "cgroup_enable=memory"]

    public let id = "pi-cgroups"
    public let summary = "memory cgroup enabled on Raspberry Pi (cmdline.txt, reboot)"

    public init() {}

    public func applies(to host: InventoryHost, facts: HostFacts) -> Bool { facts.isRaspberryPi }

    /// `path=<cmdline.txt>` then its first line (Bookworm's /boot/firmware first, older /boot).
    public func probe(for host: InventoryHost) -> String {
        "for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do if [ -f \"$f\" ]; then echo \"path=$f\"; "
            + "IFS= read -r l < \"$f\" || true; printf 'line=%s\\n' \"$l\"; break; fi; done"
    }

    public func desiredState(_ context: StepContext) -> String { id + "|" + Self.flags.joined(separator: " ") }

    public func decide(_ context: StepContext) throws -> Decision {
        var path: String?
        var line = ""
        for entry in context.probe.split(separator: "\n") {
            if entry.hasPrefix("path=") { path = String(entry.dropFirst(5)) }
            if entry.hasPrefix("line=") { line = String(entry.dropFirst(5)) }
        }
        guard let path else {
            throw StepError("a Raspberry Pi without /boot/firmware/cmdline.txt or /boot/cmdline.txt: is /boot mounted?")
        }
        let inFile = Self.hasFlags(line)
        let running = Self.hasFlags(context.facts.kernelCmdline ?? "")
        if inFile && running && context.facts.memoryCgroup != false {
            return .ok("memory cgroup enabled (\(path) and the running kernel have \(Self.flags.joined(separator: " ")))")
        }
        if inFile {
            return .change(reason: "\(path) has the cgroup flags but the running kernel was booted without them",
                           actions: [.reboot(reason: "boot with the memory cgroup")])
        }
        let words = line.split(separator: " ").map(String.init)
        let missing = Self.flags.filter { !words.contains($0) }
        let fixed = (words + missing).joined(separator: " ") + "\n"
        return .change(reason: "\(missing.joined(separator: " ")) missing from \(path)",
                       actions: [.writeFile(path: path, content: fixed, mode: nil, owner: nil),
                                 .reboot(reason: "boot with the memory cgroup")])
    }

    static func hasFlags(_ cmdline: String) -> Bool {
        let words = Set(cmdline.split(separator: " ").map(String.init))
        return flags.allSatisfy(words.contains)
    }
}
