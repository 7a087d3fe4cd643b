import Foundation
import LabSupport
import Testing
@testable import SSHTransport

/// The SSH transport against real sshd hosts of the lab.
@Suite(.serialized) struct TransportTests {
    func options(_ lab: Lab, host index: Int = 0, user: String = "root", auth: [SSHOptions.Authentication]? = nil,
                 knownHosts: String? = nil, policy: SSHOptions.HostKeyPolicy = .strict, pin: String? = nil,
                 sudoPassword: String? = nil, port: Int = 22) -> SSHOptions {
        let host = lab.hosts[index]
        return SSHOptions(name: host.name, address: host.address, port: port, user: user,
                          authentication: auth ?? [.keyFile(path: lab.keyPath, passphrase: nil)],
                          knownHostsPath: knownHosts ?? lab.knownHostsPath, hostKeyPolicy: policy,
                          pinnedFingerprint: pin, sudoPassword: sudoPassword, connectTimeout: 5)
    }

    func emptyKnownHosts() -> String {
        let path = NSTemporaryDirectory() + "known_hosts-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        return path
    }

    func sshError(_ body: () async throws -> Void) async -> SSHError? {
        do { try await body(); return nil } catch let error as SSHError { return error } catch { return nil }
    }

    /// The fingerprint OpenSSH computes for the host's key in the lab's known_hosts.
    func fingerprint(_ lab: Lab, _ index: Int) throws -> String {
        let out = try run("/usr/bin/ssh-keygen", ["-l", "-F", lab.hosts[index].address, "-f", lab.knownHostsPath])
        let line = try #require(out.stdout.split(separator: "\n").first { !$0.hasPrefix("#") })
        return try #require(line.split(separator: " ").first { $0.hasPrefix("SHA256:") }.map(String.init))
    }

    // MARK: Host keys

    @Test func unknownKeyIsRefusedUnderStrictWithItsFingerprintAndTheWayOut() async throws {
        try await withLab(hosts: 1) { lab in
            let expected = try fingerprint(lab, 0)
            let error = await sshError { _ = try await SSHConnection.connect(options(lab, knownHosts: emptyKnownHosts())) }
            #expect(error?.kind == .hostKeyUnknown)
            #expect(error?.message.contains(expected) == true)
            #expect(error?.message.contains("hostKeyFingerprint") == true)
            #expect(error?.message.contains("accept-new") == true)
        }
    }

    @Test func unknownKeyIsRecordedUnderAcceptNewAndTrustedAfterwards() async throws {
        try await withLab(hosts: 1) { lab in
            let knownHosts = emptyKnownHosts()
            let first = try await SSHConnection.connect(options(lab, knownHosts: knownHosts, policy: .acceptNew))
            #expect(first.hostKeyDecision == "recorded in \(knownHosts)")
            await first.close()
            let recorded = try String(contentsOfFile: knownHosts, encoding: .utf8)
            #expect(recorded.hasPrefix("\(lab.hosts[0].address) ssh-ed25519 "))
            // OpenSSH itself agrees with what was recorded.
            let check = try run("/usr/bin/ssh-keygen", ["-l", "-F", lab.hosts[0].address, "-f", knownHosts])
            #expect(check.stdout.contains(try fingerprint(lab, 0)))
            let second = try await SSHConnection.connect(options(lab, knownHosts: knownHosts, policy: .strict))
            #expect(second.hostKeyDecision == "known")
            await second.close()
        }
    }

    @Test func changedKeyIsRefusedUnderStrictAndAcceptNew() async throws {
        try await withLab(hosts: 1) { lab in
            let before = try String(contentsOfFile: lab.knownHostsPath, encoding: .utf8)
            try lab.rekey(lab.hosts[0].name)
            for policy in [SSHOptions.HostKeyPolicy.strict, .acceptNew] {
                let error = await sshError { _ = try await SSHConnection.connect(options(lab, policy: policy)) }
                #expect(error?.kind == .hostKeyChanged, "policy \(policy)")
                #expect(error?.message.contains("ssh-keygen -R") == true)
            }
            #expect(try String(contentsOfFile: lab.knownHostsPath, encoding: .utf8) == before)
        }
    }

    @Test func aPinnedFingerprintDecidesAlone() async throws {
        try await withLab(hosts: 1) { lab in
            let right = try fingerprint(lab, 0)
            let pinned = try await SSHConnection.connect(options(lab, knownHosts: emptyKnownHosts(), pin: right))
            #expect(pinned.hostKeyFingerprint == right)
            await pinned.close()
            let wrong = "SHA256:" + String(repeating: "A", count: 43)
            let error = await sshError { _ = try await SSHConnection.connect(options(lab, pin: wrong)) }
            #expect(error?.kind == .hostKeyPinMismatch)
            #expect(error?.message.contains(right) == true)
        }
    }

    // MARK: Authentication

    @Test func passphraseProtectedKeysLogIn() async throws {
        try await withLab(hosts: 1) { lab in
            let encrypted = try await SSHConnection.connect(options(lab, auth: [
                .keyFile(path: lab.encryptedKeyPath, passphrase: lab.keyPassphrase)]))
            #expect(try await encrypted.run("true").succeeded)
            await encrypted.close()
        }
    }

    /// Debian 12's libssh2 1.10 signs RSA logins with SHA-1 only: a default OpenSSH 9 host refuses them and the
    /// message says why; a host that accepts ssh-rsa (as OpenSSH before 8.8 did by default) lets the key in.
    @Test func rsaKeysLogInWhereTheHostAcceptsThemAndOtherwiseTheReasonIsNamed() async throws {
        try await withLab(hosts: 1) { lab in
            let rsa: [SSHOptions.Authentication] = [.keyFile(path: lab.rsaKeyPath, passphrase: nil)]
            let refused = await sshError { _ = try await SSHConnection.connect(options(lab, auth: rsa)) }
            #expect(refused?.kind == .authentication)
            #expect(refused?.message.contains("it is an RSA key") == true)
            #expect(refused?.message.contains("PubkeyAcceptedAlgorithms +ssh-rsa") == true)
            let config = lab.directory + "/hosts/lab-1/sshd_config"
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: config))
            handle.seekToEndOfFile()
            handle.write(Data("PubkeyAcceptedAlgorithms +ssh-rsa\n".utf8))
            try handle.close()
            _ = try lab.exec("lab-1", "kill -HUP 1")
            var connection: SSHConnection?
            for _ in 0..<50 where connection == nil {  // sshd re-executes itself on SIGHUP
                connection = try? await SSHConnection.connect(options(lab, auth: rsa))
                if connection == nil { try await Task.sleep(for: .milliseconds(100)) }
            }
            let loggedIn = try #require(connection)
            #expect(try await loggedIn.run("id -un").stdoutText == "root\n")
            await loggedIn.close()
        }
    }

    @Test func aWrongKeyOrPassphraseFailsWithAClearMessage() async throws {
        try await withLab(hosts: 1) { lab in
            let stranger = NSTemporaryDirectory() + "stranger-\(UUID().uuidString)"
            _ = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger])
            let error = await sshError {
                _ = try await SSHConnection.connect(options(lab, auth: [.keyFile(path: stranger, passphrase: nil)]))
            }
            #expect(error?.kind == .authentication)
            #expect(error?.message == "lab-1: authentication failed for root@\(lab.hosts[0].address):22: key \(stranger) was not accepted (the server allows: publickey,password)")
            let badPassphrase = await sshError {
                _ = try await SSHConnection.connect(options(lab, auth: [.keyFile(path: lab.encryptedKeyPath, passphrase: "nope")]))
            }
            #expect(badPassphrase?.message.contains("cannot be decrypted with the given passphrase") == true)
        }
    }

    @Test func passwordLogin() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await SSHConnection.connect(options(lab, user: "alice", auth: [.password(lab.alicePassword)]))
            #expect(try await connection.run("id -un").stdoutText == "alice\n")
            await connection.close()
            let error = await sshError {
                _ = try await SSHConnection.connect(options(lab, user: "alice", auth: [.password("wrong")]))
            }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("password was not accepted") == true)
        }
    }

    // MARK: sudo

    @Test func sudoWithAPasswordWorksAndThePasswordNeverReachesArgv() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            let connection = try await SSHConnection.connect(options(lab, user: "alice", sudoPassword: lab.alicePassword))
            // Sample every process's argv on the host while a privileged command runs.
            let probe = Task.detached {
                try lab.exec(host, "for i in $(seq 1 40); do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo; sleep 0.05; done")
            }
            let result = try await connection.run("sleep 1.5; id -u", privileged: true)
            let seen = try await probe.value
            #expect(result.stdoutText == "0\n")
            #expect(seen.stdout.contains("sleep 1.5"))          // the sampling really saw the command
            #expect(!seen.stdout.contains(lab.alicePassword))
            // stdin after the password still reaches the command.
            let echoed = try await connection.run("cat", stdin: Data("payload\n".utf8), privileged: true)
            #expect(echoed.stdoutText == "payload\n")
            await connection.close()
        }
    }

    @Test func sudoProblemsAreNamed() async throws {
        try await withLab(hosts: 1) { lab in
            let noPassword = try await SSHConnection.connect(options(lab, user: "alice"))
            let missing = await sshError { _ = try await noPassword.run("true", privileged: true) }
            #expect(missing?.kind == .sudo)
            #expect(missing?.message.contains("needs a password") == true)
            await noPassword.close()
            let wrong = try await SSHConnection.connect(options(lab, user: "alice", sudoPassword: "not-it"))
            let refused = await sshError { _ = try await wrong.run("true", privileged: true) }
            #expect(refused?.message.contains("sudo refused the password") == true)
            await wrong.close()
            let bob = try await SSHConnection.connect(options(lab, user: "bob", sudoPassword: "unused"))
            #expect(try await bob.run("id -u", stdin: Data("x".utf8), privileged: true).stdoutText == "0\n")
            await bob.close()
        }
    }

    // MARK: exec

    @Test func execSeparatesStreamsAndReportsStatusAndSignal() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await SSHConnection.connect(options(lab))
            let mixed = try await connection.run("echo out; echo err >&2; exit 3")
            #expect(mixed.stdoutText == "out\n")
            #expect(mixed.stderrText == "err\n")
            #expect(mixed.exitStatus == 3)
            let killed = try await connection.run("kill -TERM $$")
            #expect(killed.exitSignal == "TERM")
            #expect(killed.exitStatus == nil)
            let input = Data((0..<300_000).map { UInt8($0 % 251) })
            let echoed = try await connection.run("cat; head -c 3000000 /dev/zero >&2", stdin: input)
            #expect(echoed.stdout == input)
            #expect(echoed.stderr.count == 3_000_000)
            #expect(connection.statistics.commands == 3)
            await connection.close()
        }
    }

    @Test func aRefusedPortFailsFast() async throws {
        try await withLab(hosts: 1) { lab in
            let error = await sshError { _ = try await SSHConnection.connect(options(lab, port: 2)) }
            #expect(error?.kind == .unreachable)
            #expect(error?.message.contains("Connection refused") == true)
        }
    }

    @Test func aSilentHostTimesOutAtTheConnectTimeout() async throws {
        try await withLab(hosts: 1) { lab in
            _ = try lab.exec("lab-1", "ip link set eth0 down")  // SYNs go unanswered
            var silent = options(lab)
            silent.connectTimeout = 1
            let started = ContinuousClock.now
            let error = await sshError { _ = try await SSHConnection.connect(silent) }
            let waited = ContinuousClock.now - started
            #expect(error?.kind == .timeout)
            #expect(error?.message == "lab-1: connect to \(lab.hosts[0].address):22 timed out after 1s")
            #expect(waited >= .milliseconds(900) && waited < .seconds(3))
        }
    }

    // MARK: Files

    @Test func a50MBUploadArrivesIntactAndAtomically() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            let local = NSTemporaryDirectory() + "upload-\(UUID().uuidString)"
            _ = try run("/bin/sh", ["-c", "head -c 52428800 /dev/urandom > \(local)"])
            let localSum = try run("/usr/bin/sha256sum", [local]).stdout.prefix(64)
            _ = try lab.exec(host, "echo old > /srv/bundle.bin")
            let oldSum = try lab.exec(host, "sha256sum /srv/bundle.bin").stdout.prefix(64)
            let connection = try await SSHConnection.connect(options(lab))
            // Watch the destination while it is replaced: only the old or the whole new file may ever be seen.
            let watcher = Task.detached {
                try lab.exec(host, "for i in $(seq 1 60); do sha256sum /srv/bundle.bin | cut -c1-64; sleep 0.02; done")
            }
            try await connection.upload(.file(local), to: "/srv/bundle.bin", mode: 0o640, owner: "bob:bob")
            let seen = Set(try await watcher.value.stdout.split(separator: "\n").map(String.init))
            #expect(seen.isSubset(of: [String(oldSum), String(localSum)]))
            let remote = try lab.exec(host, "sha256sum /srv/bundle.bin | cut -c1-64; stat -c '%a %U:%G' /srv/bundle.bin; ls -a /srv")
            let lines = remote.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == String(localSum))
            #expect(lines.dropFirst().first == "640 bob:bob")
            #expect(!remote.stdout.contains(".provision-"))
            let back = try await connection.download("/srv/bundle.bin")
            #expect(back == (try Data(contentsOf: URL(fileURLWithPath: local))))
            await connection.close()
            try? FileManager.default.removeItem(atPath: local)
        }
    }

    @Test func aFailedUploadLeavesNothingBehind() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await SSHConnection.connect(options(lab))
            let error = await sshError {
                try await connection.upload(.data(Data("x".utf8)), to: "/srv/owned", owner: "no-such-user")
            }
            #expect(error?.kind == .transfer)
            #expect(error?.message.contains("placing /srv/owned failed") == true)
            let listing = try lab.exec(lab.hosts[0].name, "ls -a /srv").stdout
            #expect(!listing.contains("provision"))
            #expect(!listing.contains("owned"))
            await connection.close()
        }
    }

    @Test func uploadsMakeMissingFoldersWithoutAnExtraCommand() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            _ = try lab.exec(host, "echo x > /srv/plain")
            let root = try await SSHConnection.connect(options(lab))
            try await root.upload(.data(Data("one\n".utf8)), to: "/srv/a/b/c/one.conf", mode: 0o600)
            try await root.upload(.data(Data("two\n".utf8)), to: "/srv/a/b/c/two.conf", mode: 0o600)
            // Each upload was its one command, folders included.
            #expect(root.statistics.commands == 0 && root.statistics.uploads == 2)
            let made = try lab.exec(host, "cat /srv/a/b/c/one.conf /srv/a/b/c/two.conf; stat -c '%a %U %n' /srv/a /srv/a/b /srv/a/b/c").stdout
            #expect(made == "one\ntwo\n755 root /srv/a\n755 root /srv/a/b\n755 root /srv/a/b/c\n")
            let error = await sshError { try await root.upload(.data(Data("x".utf8)), to: "/srv/plain/x.conf") }
            #expect(error?.kind == .transfer)
            #expect(error?.message.hasPrefix("lab-1: placing /srv/plain/x.conf failed (exit 1): mkdir: cannot create directory '/srv/plain'") == true)
            await root.close()

            let alice = try await SSHConnection.connect(options(lab, user: "alice", sudoPassword: lab.alicePassword))
            try await alice.upload(.data(Data("k3s: yes\n".utf8)), to: "/etc/provision-new/sub/test.yaml", mode: 0o600)
            #expect(alice.statistics.commands == 0 && alice.statistics.uploads == 1)
            let placed = try lab.exec(host, "cat /etc/provision-new/sub/test.yaml; stat -c '%a %U' /etc/provision-new/sub /etc/provision-new/sub/test.yaml").stdout
            #expect(placed == "k3s: yes\n755 root\n600 root\n")
            await alice.close()
        }
    }

    @Test func aStreamCutShortIsNeverPlaced() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0].name
            _ = try lab.exec(host, "echo old > /srv/images.tar")
            let connection = try await SSHConnection.connect(options(lab))
            // Fewer bytes arrive than the upload announced, as when the controller dies midway.
            let script = SSHConnection.placingScript("/srv/images.tar", size: 10, token: "t1", mode: 0o644, owner: nil,
                                                     backup: false)
            let short = try await connection.run(script, stdin: Data("short".utf8))
            #expect(short.exitStatus == 1)
            #expect(short.stderrText == "received 5 of 10 bytes\n")
            #expect(try lab.exec(host, "cat /srv/images.tar").stdout == "old\n")
            #expect(try !lab.exec(host, "ls -a /srv").stdout.contains(".provision-"))

            // The same with a real upload cancelled while its bytes are on the way.
            let local = NSTemporaryDirectory() + "upload-\(UUID().uuidString)"
            _ = try run("/bin/sh", ["-c", "head -c 209715200 /dev/urandom > \(local)"])
            defer { try? FileManager.default.removeItem(atPath: local) }
            let upload = Task { try await connection.upload(.file(local), to: "/srv/images.tar") }
            _ = try lab.exec(host, "for i in $(seq 1 200); do ls -a /srv | grep -q provision- && exit 0; sleep 0.01; done; exit 1")
            upload.cancel()
            let error = await sshError { try await upload.value }
            #expect(error?.kind == .cancelled)
            // The host notices the closed stream by itself; give it a moment to clean up.
            let after = try lab.exec(host, "for i in $(seq 1 100); do ls -a /srv | grep -q provision- || break; sleep 0.05; done; cat /srv/images.tar; ls -a /srv; cat /tmp/siglog").stdout
            #expect(after.hasPrefix("old\n"))
            #expect(!after.contains(".provision-"))
            await connection.close()
        }
    }

    @Test func nonRootUploadsGoThroughSudo() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await SSHConnection.connect(options(lab, user: "alice", sudoPassword: lab.alicePassword))
            try await connection.upload(.data(Data("k3s: yes\n".utf8)), to: "/etc/provision-test.yaml", mode: 0o600)
            let check = try lab.exec(lab.hosts[0].name,
                                     "cat /etc/provision-test.yaml; stat -c '%a %U' /etc/provision-test.yaml; ls -a /home/alice /etc")
            #expect(check.stdout.hasPrefix("k3s: yes\n600 root\n"))
            #expect(!check.stdout.contains(".provision-"))
            // A file larger than any pipe buffer: sudo reads its password line and not a byte of what follows.
            let local = NSTemporaryDirectory() + "upload-\(UUID().uuidString)"
            _ = try run("/bin/sh", ["-c", "head -c 3000000 /dev/urandom > \(local)"])
            defer { try? FileManager.default.removeItem(atPath: local) }
            try await connection.upload(.file(local), to: "/srv/big.bin")
            let localSum = try run("/usr/bin/sha256sum", [local]).stdout.prefix(64)
            #expect(try lab.exec(lab.hosts[0].name, "sha256sum /srv/big.bin").stdout.prefix(64) == localSum)
            await connection.close()
        }
    }
}
