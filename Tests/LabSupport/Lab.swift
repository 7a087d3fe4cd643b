import Foundation

/// One lab host: a Debian "machine" in its own namespaces with sshd on port 22.
public struct LabHost: Sendable {
    public let name: String
    public let address: String
    public let isPi: Bool

    public init(name: String, address: String, isPi: Bool) {
        self.name = name
        self.address = address
        self.isPi = isPi
    }
}

/// A running lab made by scripts/lab: its directory holds keys, known_hosts, an inventory and each host's files.
public struct Lab: Sendable {
    public let directory: String
    public let hosts: [LabHost]

    public init(directory: String, hosts: [LabHost]) {
        self.directory = directory
        self.hosts = hosts
    }

    public var inventoryPath: String { directory + "/inventory.yaml" }
    public var knownHostsPath: String { directory + "/known_hosts" }
    public var keyPath: String { directory + "/id_ed25519" }
    public var rsaKeyPath: String { directory + "/id_rsa" }
    public var encryptedKeyPath: String { directory + "/id_ed25519_enc" }
    /// The passphrase of `encryptedKeyPath`.
    public var keyPassphrase: String { secret("key.passphrase") }
    /// alice's login and sudo password (the same on every host of the lab).
    public var alicePassword: String { secret("alice.password") }

    /// Starts `hosts` hosts (lab-1 ...) in a fresh directory under /tmp; `pi` lists the 1-based indexes of the hosts
    /// that look like a Raspberry Pi. Returns once every sshd accepts connections.
    public static func up(hosts: Int = 3, pi: [Int] = []) throws -> Lab {
        let directory = "/tmp/provision-lab-" + UUID().uuidString.lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        var arguments = ["up", "--dir", directory, "--hosts", String(hosts)]
        if !pi.isEmpty { arguments += ["--pi", pi.map(String.init).joined(separator: ",")] }
        do {
            let result = try run(Repo.labScript, arguments)
            guard result.status == 0 else {
                throw LabError.commandFailed(command: "scripts/lab up --hosts \(hosts)", output: result)
            }
            return Lab(directory: directory, hosts: try readHosts(directory + "/hosts.tsv"))
        } catch {
            _ = try? run(Repo.labScript, ["down", "--dir", directory])
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Stops every host and removes the lab's directory.
    public func down() throws {
        let result = try run(Repo.labScript, ["down", "--dir", directory])
        guard result.status == 0 else { throw LabError.commandFailed(command: "scripts/lab down", output: result) }
        try FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `sh -c command` inside `host` as root (not over SSH), returning whatever it returned.
    public func exec(_ host: String, _ command: String) throws -> ProcessOutput {
        try run(Repo.labScript, ["exec", "--dir", directory, host, "--", "sh", "-c", command])
    }

    /// Copies the machine's file `localPath` into `host` at `remotePath` with permissions `mode`, as root. The bytes
    /// are streamed to `scripts/lab exec` on stdin (no size limit, no base64, nothing on a command line); missing
    /// parent directories are made and the file is replaced by rename, so a reader never sees half of it. A
    /// directory is copied with its contents (tar), `mode` then being the mode of `remotePath` itself.
    public func copy(_ localPath: String, to host: String, at remotePath: String, mode: Int = 0o644) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: localPath, isDirectory: &isDirectory) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: localPath])
        }
        let octal = String(mode, radix: 8)
        let result: ProcessOutput
        if isDirectory.boolValue {
            // tar on the machine piped into the host's tar; paths reach both shells as arguments, never as code.
            let script = "tar -C \"$1\" -cf - . | \"$2\" exec --dir \"$3\" \"$4\" -- sh -c " +
                "'set -e; mkdir -p \"$1\"; tar -C \"$1\" -xf -; chmod \"$2\" \"$1\"' sh \"$5\" \"$6\""
            result = try run("/bin/bash", ["-c", "set -o pipefail; " + script, "bash", localPath,
                                         Repo.labScript, directory, host, remotePath, octal])
        } else {
            let script = "set -e; mkdir -p \"$(dirname \"$1\")\"; t=\"$1.lab-copy.$$\"; " +
                "cat > \"$t\"; chmod \"$2\" \"$t\"; mv -f \"$t\" \"$1\""
            result = try run(Repo.labScript, ["exec", "--dir", directory, host, "--", "sh", "-c", script, "sh",
                                              remotePath, octal], stdinFile: localPath)
        }
        guard result.status == 0 else {
            throw LabError.commandFailed(command: "copy \(localPath) to \(host):\(remotePath)", output: result)
        }
    }

    /// Gives `host` a new host key, served from the next connection on; known_hosts keeps the old one.
    public func rekey(_ host: String) throws {
        let result = try run(Repo.labScript, ["rekey", "--dir", directory, host])
        guard result.status == 0 else { throw LabError.commandFailed(command: "scripts/lab rekey \(host)", output: result) }
    }

    /// The host's sshd log (LogLevel VERBOSE): one "Accepted ..." line per login, one "Starting session" per command.
    /// A copy of the lab's inventory in which `host` is unreachable (its SSH port is one nothing listens on).
    public func inventory(unreachable host: String) throws -> String {
        guard let address = hosts.first(where: { $0.name == host })?.address else {
            throw LabError.malformed(path: inventoryPath, line: "no host \(host) in this lab")
        }
        var text = try String(contentsOfFile: inventoryPath, encoding: .utf8)
        text = text.replacingOccurrences(of: "name: \(host), address: \(address),",
                                         with: "name: \(host), address: \(address), ssh: {port: 2},")
        let path = "\(directory)/\(host)-unreachable.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    public func sshdLog(_ host: String) -> String {
        (try? String(contentsOfFile: "\(directory)/hosts/\(host)/sshd.log", encoding: .utf8)) ?? ""
    }

    /// How often `host` has rebooted since `up` (reboot, shutdown -r, systemctl reboot run inside it).
    public func reboots(_ host: String) -> Int {
        let text = (try? String(contentsOfFile: "\(directory)/hosts/\(host)/reboots", encoding: .utf8)) ?? ""
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// The lines of the host's /var/log/systemd-standin.log, oldest first: "<ISO time> <verb> <unit>[ (<why>)]" with
    /// verb start, stop, restart or reload, one per job the systemd stand-in carried out; why is "boot", "shutdown"
    /// or "Restart=always" (and the like) when the host itself did it. Nothing is logged for a no-op (`start` of a
    /// running unit), so an unchanged list means nothing was (re)started. Read from the host's disk, so it also
    /// works while the host reboots.
    public func serviceEvents(_ host: String) -> [String] {
        let path = "\(directory)/hosts/\(host)/upper/var/log/systemd-standin.log"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Waits until `host`'s sshd (its PID 1) accepts connections. With `afterReboots`, waits for more reboots than
    /// that first: pass `reboots(host)` read before asking the host to reboot. Throws on timeout.
    public func waitForSSH(_ host: String, timeout: Double = 30, afterReboots: Int? = nil) throws {
        var arguments = ["wait", "--dir", directory, host, "--timeout", String(timeout)]
        if let afterReboots { arguments += ["--reboots-above", String(afterReboots)] }
        let result = try run(Repo.labScript, arguments)
        guard result.status == 0 else { throw LabError.commandFailed(command: "scripts/lab wait \(host)", output: result) }
    }

    private func secret(_ file: String) -> String {
        let text = (try? String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8)) ?? ""
        return text.trimmingCharacters(in: .newlines)
    }

    /// hosts.tsv: name, address, pi (0|1), PID of the host's PID 1.
    private static func readHosts(_ path: String) throws -> [LabHost] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 3 else { throw LabError.malformed(path: path, line: String(line)) }
            return LabHost(name: fields[0], address: fields[1], isPi: fields[2] == "1")
        }
    }
}

/// Runs `body` against a fresh lab and always tears the lab down, whether `body` returns or throws.
public func withLab<T>(hosts: Int = 3, pi: [Int] = [], isolation: isolated (any Actor)? = #isolation,
                       _ body: (Lab) async throws -> T) async throws -> T {
    let lab = try Lab.up(hosts: hosts, pi: pi)
    let value: T
    do {
        value = try await body(lab)
    } catch {
        try? lab.down()
        throw error
    }
    try lab.down()
    return value
}
