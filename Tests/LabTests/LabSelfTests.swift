import Foundation
import LabSupport
import Testing

/// The lab is what the other lab tests take it for: separate Debian hosts with sshd as PID 1, copy-on-write files,
/// a convincing Raspberry Pi, and nothing left behind by `down`. Checked with OpenSSH's own client.
@Suite(.serialized) struct LabSelfTests {
    /// OpenSSH with the lab's key and known_hosts only: no user config, strict host keys, no prompts.
    func ssh(_ lab: Lab, _ host: LabHost, user: String = "root", knownHosts: String? = nil,
             _ command: String) throws -> ProcessOutput {
        try run("/usr/bin/ssh", ["-F", "/dev/null", "-i", lab.keyPath, "-o", "IdentitiesOnly=yes",
                                 "-o", "UserKnownHostsFile=\(knownHosts ?? lab.knownHostsPath)",
                                 "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                                 "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "\(user)@\(host.address)", command])
    }

    /// "PID start-time" from /proc/PID/stat, or nil once the process is gone.
    func processIdentity(_ pid: String) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 && fields[0] != "Z" ? "\(pid) \(fields[19])" : nil
    }

    @Test func everyHostAnswersOverSSHWithItsOwnNameAndBootId() async throws {
        try await withLab(hosts: 3) { lab in
            var bootIds: Set<String> = []
            for host in lab.hosts {
                let result = try ssh(lab, host, "hostname; cat /proc/sys/kernel/random/boot_id")
                #expect(result.status == 0, "\(host.name): \(result.stderr)")
                let lines = result.stdout.split(separator: "\n").map(String.init)
                #expect(lines.first == host.name)
                bootIds.insert(lines.last ?? "")
                #expect(host.address.hasPrefix("10.250."))
            }
            let machineBootId = try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            bootIds.insert(machineBootId.trimmingCharacters(in: .newlines))
            #expect(bootIds.count == 4, "each host has its own boot id, unlike the machine's")
            let inventory = try String(contentsOfFile: lab.inventoryPath, encoding: .utf8)
            #expect(inventory.contains("{name: lab-1, address: \(lab.hosts[0].address), roles: [server]}"))
            #expect(inventory.contains("keyPath: \(lab.keyPath)"))
        }
    }

    @Test func filesWrittenOnAHostStayOnThatHost() async throws {
        try await withLab(hosts: 2) { lab in
            let tag = UUID().uuidString
            let paths = ["/etc/lab-probe-\(tag)", "/usr/local/lab-probe-\(tag)", "/opt/lab-probe-\(tag)",
                         "/var/lib/lab-probe-\(tag)", "/root/lab-probe-\(tag)"]
            let write = try lab.exec("lab-1", paths.map { "echo \(tag) > \($0)" }.joined(separator: " && "))
            #expect(write.status == 0, "\(write.stderr)")
            let onHost = try lab.exec("lab-1", "cat \(paths.joined(separator: " "))")
            #expect(onHost.stdout == String(repeating: tag + "\n", count: paths.count))
            for path in paths {
                #expect(!FileManager.default.fileExists(atPath: path), "\(path) reached the machine")
                #expect(try lab.exec("lab-2", "test -e \(path)").status == 1, "\(path) reached lab-2")
            }
            // The machine's own /root (credentials) is not what a host sees as /root.
            let machineRoot = try FileManager.default.contentsOfDirectory(atPath: "/root")
            let hostRoot = try lab.exec("lab-2", "ls -A /root").stdout.split(separator: "\n").map(String.init)
            #expect(Set(hostRoot) == [".bash_logout", ".bashrc", ".profile", ".ssh"], "\(hostRoot) vs \(machineRoot)")
        }
    }

    @Test func sshdIsPID1AndTheHostSeesOnlyItsOwnProcesses() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0]
            let comm = try ssh(lab, host, "cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline")
            #expect(comm.status == 0, "\(comm.stderr)")
            #expect(comm.stdout.hasPrefix("sshd\n"))
            #expect(comm.stdout.contains("/usr/sbin/sshd -D"))
            // Through lab.exec as well: PID 1, the exec'd shell and whatever sshd runs, never the machine's processes.
            let processes = try lab.exec(host.name, "for p in /proc/[0-9]*; do cat $p/comm; done")
            #expect(processes.status == 0)
            #expect(!processes.stdout.contains("swift"))
            #expect(processes.stdout.split(separator: "\n").count < 10, "\(processes.stdout)")
        }
    }

    @Test func aPiHostLooksLikeARaspberryPi4AndTheOthersDoNot() async throws {
        try await withLab(hosts: 2, pi: [2]) { lab in
            #expect(lab.hosts.map(\.isPi) == [false, true])
            let probe = """
                uname -m; dpkg --print-architecture; cat /proc/cmdline; grep '^memory' /proc/cgroups | cut -f4
                cat /boot/firmware/cmdline.txt 2>/dev/null | wc -l; cat /sys/firmware/devicetree/base/model 2>/dev/null
                """
            let pi = try ssh(lab, lab.hosts[1], probe)
            #expect(pi.status == 0, "\(pi.stderr)")
            let piLines = pi.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(piLines[0] == "aarch64")
            #expect(piLines[1] == "amd64", "dpkg is not faked")
            #expect(piLines[2].hasPrefix("console=serial0,115200 console=tty1 root=PARTUUID="))
            #expect(piLines[3] == "0", "memory cgroup disabled")
            #expect(piLines[4] == "1", "cmdline.txt is one line")
            #expect(piLines[5] == "Raspberry Pi 4 Model B Rev 1.5\u{0}")
            let cmdlineTxt = try lab.exec("lab-2", "cat /boot/firmware/cmdline.txt").stdout
            #expect(cmdlineTxt == piLines[2] + "\n")
            #expect(try ssh(lab, lab.hosts[1], "uname -a").stdout.contains(" aarch64 "))

            let pc = try ssh(lab, lab.hosts[0], probe)
            let pcLines = pc.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(pcLines[0] == "x86_64")
            #expect(pcLines[2].hasPrefix("BOOT_IMAGE=/boot/vmlinuz-"))
            #expect(pcLines[3] == "1")
            #expect(pcLines[4] == "0")
            #expect(pcLines[5] == "")
        }
    }

    @Test func hostsLookFreshAndHaveTheLabUsers() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0]
            let fresh = try ssh(lab, host, "for t in docker kubectl k3s gitlab-runner helm; do command -v $t; done; ls -A /opt /usr/local/bin/")
            #expect(fresh.status == 0, "\(fresh.stderr)")
            #expect(fresh.stdout == "/opt:\n\n/usr/local/bin/:\n", "no docker, k3s, gitlab-runner or machine tools")
            // alice's sudo wants her password; bob's does not.
            let aliceNoPassword = try ssh(lab, host, user: "alice", "sudo -n true")
            #expect(aliceNoPassword.status == 1)
            let aliceWithPassword = try run("/usr/bin/ssh", ["-F", "/dev/null", "-i", lab.keyPath,
                                                             "-o", "UserKnownHostsFile=\(lab.knownHostsPath)",
                                                             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                                                             "alice@\(host.address)", "sudo -S -p '' id -u"],
                                            stdin: lab.alicePassword + "\n")
            #expect(aliceWithPassword.stdout == "0\n", "\(aliceWithPassword.stderr)")
            #expect(try ssh(lab, host, user: "bob", "sudo -n id -u").stdout == "0\n")
            // The other client keys of the lab are authorized for root.
            for key in [lab.rsaKeyPath, lab.encryptedKeyPath] {
                #expect(FileManager.default.fileExists(atPath: key))
            }
            #expect(!lab.keyPassphrase.isEmpty && !lab.alicePassword.isEmpty)
            let log = lab.sshdLog(host.name)
            #expect(log.contains("Accepted publickey for bob"))
            #expect(log.contains("Starting session: command for alice"))
        }
    }

    @Test func rekeyServesANewHostKeyThatStrictCheckingRefuses() async throws {
        try await withLab(hosts: 2) { lab in
            let host = lab.hosts[1]
            #expect(try ssh(lab, host, "true").status == 0)
            try lab.rekey(host.name)
            let refused = try ssh(lab, host, "true")
            #expect(refused.status == 255)
            #expect(refused.stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"))
            // The new key is the one now in the host's /etc/ssh, and it works once known.
            let newKey = try lab.exec(host.name, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub").stdout
            let knownHosts = lab.directory + "/known_hosts.new"
            try "\(host.address) \(newKey)".write(toFile: knownHosts, atomically: true, encoding: .utf8)
            #expect(try ssh(lab, host, knownHosts: knownHosts, "hostname").stdout == "\(host.name)\n")
            #expect(try ssh(lab, lab.hosts[0], "true").status == 0, "the other host keeps its key")
        }
    }

    @Test func downLeavesNoNamespaceLinkOrProcessBehind() throws {
        let lab = try Lab.up(hosts: 3, pi: [3])
        let env = try String(contentsOfFile: lab.directory + "/lab.env", encoding: .utf8)
        let id = try #require(env.split(separator: "\n").first { $0.hasPrefix("LAB_ID=") }?.dropFirst(7))
        let pids = try String(contentsOfFile: lab.directory + "/hosts.tsv", encoding: .utf8)
            .split(separator: "\n").compactMap { $0.split(separator: "\t").last.map(String.init) }
        #expect(pids.count == 3)
        // PIDs wrap quickly on a busy machine (pid_max may be 32768): a process is its PID plus its start time.
        let processes = pids.compactMap(processIdentity)
        #expect(processes.count == 3)

        try lab.down()
        #expect(!FileManager.default.fileExists(atPath: lab.directory))
        let namespaces = try run("/usr/bin/ip", ["netns", "list"]).stdout
        let links = try FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")
        // Suites run in parallel: another lab may take the freed id at once. Its names are then not ours to check.
        let owner = (try? String(contentsOfFile: "/run/provision-lab/\(id)/dir", encoding: .utf8))?
            .trimmingCharacters(in: .newlines)
        if owner == nil || owner == lab.directory {
            #expect(!namespaces.contains("pvlab\(id)-"))
            #expect(!links.contains("pvlab\(id)"))
            #expect(!links.contains { $0.hasPrefix("pv\(id)h") })
            #expect(owner == nil, "the id is still held")
        }
        for (pid, process) in zip(pids, processes) {
            #expect(processIdentity(pid) != process, "the host process \(pid) still runs")
        }
        // A second down has nothing left to do and says so by succeeding.
        #expect(try run(Repo.labScript, ["down", "--dir", lab.directory]).status == 0)
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` seconds pass; returns whether it held.
    func eventually(timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition()
    }

    @Test func aptInstallsAndRemovesPackagesFromTheLocalRepositoryOnly() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0]
            let machineHadIptables = FileManager.default.fileExists(atPath: "/usr/sbin/iptables")
            let sources = try lab.exec(host.name, "cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null")
            #expect(sources.stdout.contains("URIs: file:/mnt/lab-apt\nSuites: ./\nTrusted: yes"))
            #expect(!sources.stdout.contains("http"), "only the lab's repository: \(sources.stdout)")
            let install = try ssh(lab, host, "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables")
            #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
            #expect(install.stdout.contains("file:/mnt/lab-apt ./ Packages"))
            #expect(!install.stdout.contains("http:") && !install.stdout.contains("https:"))
            let version = try ssh(lab, host, "iptables --version")
            #expect(version.status == 0 && version.stdout.hasPrefix("iptables v1."), "\(version.stdout)\(version.stderr)")
            if !machineHadIptables {
                #expect(!FileManager.default.fileExists(atPath: "/usr/sbin/iptables"), "the install reached the machine")
            }
            // Already installed on the machine, so on the host too: apt has nothing to do.
            let curl = try ssh(lab, host, "DEBIAN_FRONTEND=noninteractive apt-get install -y curl")
            #expect(curl.status == 0 && curl.stdout.contains("curl is already the newest version"), "\(curl.stdout)")
            let remove = try ssh(lab, host, "DEBIAN_FRONTEND=noninteractive apt-get remove -y iptables && ! command -v iptables")
            #expect(remove.status == 0, "\(remove.stdout)\(remove.stderr)")
        }
    }

    @Test func systemctlEnablesStartsRestartsSupervisesAndWantsDaemonReload() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0]
            // StartLimitBurst: this test starts the unit more often than systemd's default 5 per 10 s allow.
            let unit = """
                [Unit]
                Description=Lab daemon
                StartLimitBurst=50
                [Service]
                Environment="GREETING=hello world"
                ExecStart=/bin/sh -c 'echo "labd says $GREETING"; exec sleep 1000'
                Restart=always
                RestartSec=0.2
                [Install]
                WantedBy=multi-user.target
                """
            let write = try lab.exec(host.name, "cat > /etc/systemd/system/labd.service <<'EOF'\n\(unit)\nEOF")
            #expect(write.status == 0)
            let enable = try ssh(lab, host, "systemctl enable --now labd")
            #expect(enable.status == 0, "\(enable.stderr)")
            #expect(enable.stderr.contains("Created symlink /etc/systemd/system/multi-user.target.wants/labd.service → /etc/systemd/system/labd.service."))
            let active = try ssh(lab, host, "systemctl is-active labd")
            #expect(active.status == 0 && active.stdout == "active\n")
            let enabled = try ssh(lab, host, "systemctl is-enabled labd")
            #expect(enabled.status == 0 && enabled.stdout == "enabled\n")
            #expect(lab.serviceEvents(host.name).count == 1)
            #expect(lab.serviceEvents(host.name).last?.hasSuffix(" start labd.service") == true)

            // Starting a running unit does nothing and logs nothing; restart does and is logged.
            #expect(try ssh(lab, host, "systemctl start labd").status == 0)
            #expect(lab.serviceEvents(host.name).count == 1)
            let firstPID = try ssh(lab, host, "systemctl show -p MainPID --value labd").stdout
            #expect(try ssh(lab, host, "systemctl restart labd").status == 0)
            #expect(lab.serviceEvents(host.name).last?.hasSuffix(" restart labd.service") == true)
            let secondPID = try ssh(lab, host, "systemctl show -p MainPID --value labd").stdout
            #expect(firstPID != secondPID && Int(secondPID.trimmingCharacters(in: .newlines)) ?? 0 > 1)

            // Restart=always: a killed main process comes back, counted in NRestarts.
            #expect(try ssh(lab, host, "kill -9 \(secondPID.trimmingCharacters(in: .newlines))").status == 0)
            let cameBack = try eventually {
                let show = try ssh(lab, host, "systemctl show -p ActiveState,MainPID,NRestarts labd").stdout
                return show.contains("ActiveState=active") && show.contains("NRestarts=1") && !show.contains("MainPID=\(secondPID)")
            }
            #expect(cameBack)
            #expect(lab.serviceEvents(host.name).last?.hasSuffix(" restart labd.service (Restart=always)") == true)

            // A changed unit file keeps running the loaded definition until daemon-reload, with systemd's warning.
            #expect(try lab.exec(host.name, "sed -i 's/hello world/hello again/' /etc/systemd/system/labd.service").status == 0)
            let stale = try ssh(lab, host, "systemctl restart labd")
            #expect(stale.stderr.contains("Warning: The unit file, source configuration file or drop-ins of labd.service changed on disk. Run 'systemctl daemon-reload' to reload units."))
            #expect(try ssh(lab, host, "systemctl show -p NeedDaemonReload labd").stdout == "NeedDaemonReload=yes\n")
            #expect(try ssh(lab, host, "journalctl -u labd -n 1 -o cat").stdout == "labd says hello world\n")
            let reload = try ssh(lab, host, "systemctl daemon-reload && systemctl restart labd")
            #expect(reload.status == 0 && reload.stderr.isEmpty, "\(reload.stderr)")
            #expect(try eventually { try ssh(lab, host, "journalctl -u labd -o cat").stdout.contains("labd says hello again") })

            let status = try ssh(lab, host, "systemctl status labd")
            #expect(status.status == 0 && status.stdout.contains("Active: active (running)"), "\(status.stdout)")
            let stop = try ssh(lab, host, "systemctl stop labd; systemctl is-active labd")
            #expect(stop.status == 3 && stop.stdout == "inactive\n")
            #expect(try ssh(lab, host, "systemctl status labd").status == 3)
            let disable = try ssh(lab, host, "systemctl disable labd; systemctl is-enabled labd")
            #expect(disable.status == 1 && disable.stdout == "disabled\n")
            #expect(disable.stderr.contains("Removed \"/etc/systemd/system/multi-user.target.wants/labd.service\"."))
            let verbs = lab.serviceEvents(host.name).map { $0.split(separator: " ").dropFirst().joined(separator: " ") }
            #expect(verbs == ["start labd.service", "restart labd.service", "restart labd.service (Restart=always)",
                              "restart labd.service", "restart labd.service", "stop labd.service"])
        }
    }

    @Test func typeNotifyStaysActivatingUntilReadyAndAStartWaitsForIt() async throws {
        try await withLab(hosts: 1) { lab in
            let host = lab.hosts[0]
            // A daemon that is ready 0.6 s after it starts: systemd-notify where the host has it (Debian does),
            // else python3 writing READY=1 to $NOTIFY_SOCKET.
            let daemon = """
                #!/bin/sh
                echo "notifyd starting"
                sleep "${READY_AFTER:-0.6}"
                if command -v systemd-notify >/dev/null; then systemd-notify --ready --status="serving"
                else python3 -c 'import os, socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ["NOTIFY_SOCKET"]); s.send(b"READY=1")'
                fi
                exec sleep 1000

                """
            let local = lab.directory + "/notifyd"
            try daemon.write(toFile: local, atomically: true, encoding: .utf8)
            try lab.copy(local, to: host.name, at: "/usr/local/bin/notifyd", mode: 0o755)
            #expect(try lab.exec(host.name, "stat -c %a /usr/local/bin/notifyd").stdout == "755\n")
            let unit = "[Unit]\nDescription=Notify demo\n[Service]\nType=notify\nExecStart=/usr/local/bin/notifyd\n" +
                "TimeoutStartSec=2\n"
            let write = try lab.exec(host.name, "printf '\(unit)' > /etc/systemd/system/notifyd.service")
            #expect(write.status == 0)

            // start returns once READY=1 arrived, not before.
            let began = Date()
            let start = try ssh(lab, host, "systemctl start notifyd")
            let took = Date().timeIntervalSince(began)
            #expect(start.status == 0, "\(start.stderr)")
            #expect(took >= 0.6 && took < 1.9, "start took \(took) s")
            #expect(try ssh(lab, host, "systemctl is-active notifyd").stdout == "active\n")
            #expect(try ssh(lab, host, "journalctl -u notifyd -o cat").stdout ==
                    "Starting notifyd.service - Notify demo...\nnotifyd starting\nStarted notifyd.service - Notify demo.\n")

            // --no-block returns at once; meanwhile the unit is activating (exit 3), then active.
            let noBlock = try ssh(lab, host, "systemctl stop notifyd; systemctl start --no-block notifyd; systemctl is-active notifyd")
            #expect(noBlock.status == 3 && noBlock.stdout == "activating\n")
            #expect(try eventually(timeout: 3) { try ssh(lab, host, "systemctl is-active notifyd").stdout == "active\n" })

            // Never ready within TimeoutStartSec=: failed, and systemctl says so as systemd does.
            #expect(try lab.exec(host.name, "mkdir -p /etc/systemd/system/notifyd.service.d && printf '[Service]\\nEnvironment=READY_AFTER=60\\n' > /etc/systemd/system/notifyd.service.d/slow.conf && systemctl daemon-reload").status == 0)
            let slow = try ssh(lab, host, "systemctl restart notifyd")
            #expect(slow.status == 1)
            #expect(slow.stderr.hasPrefix("Job for notifyd.service failed because a timeout was exceeded.\n"), "\(slow.stderr)")
            #expect(try ssh(lab, host, "systemctl is-active notifyd").stdout == "failed\n")
            let journal = try ssh(lab, host, "journalctl -u notifyd -o cat -n 3").stdout
            #expect(journal == "notifyd.service: start operation timed out. Terminating.\nnotifyd.service: Failed with result 'timeout'.\nFailed to start notifyd.service - Notify demo.\n")
        }
    }

    @Test func modprobeKnowsK3sModulesAndFailsLikeKmodForOthers() async throws {
        try await withLab(hosts: 1) { lab in
            #expect(try lab.exec("lab-1", "/sbin/modprobe br_netfilter && /sbin/modprobe overlay").status == 0)
            let unknown = try lab.exec("lab-1", "modprobe no_such_module")
            let kernel = try lab.exec("lab-1", "uname -r").stdout.trimmingCharacters(in: .newlines)
            #expect(unknown.status == 1)
            #expect(unknown.stderr == "modprobe: FATAL: Module no_such_module not found in directory /lib/modules/\(kernel)\n")
            let quiet = try lab.exec("lab-1", "modprobe -q no_such_module")
            #expect(quiet.status == 1 && quiet.stderr.isEmpty)
        }
    }

    @Test func rebootTakesTheHostDownAndBringsItBackWithItsDiskAndEnabledUnits() async throws {
        try await withLab(hosts: 2, pi: [2]) { lab in
            let (pc, pi) = (lab.hosts[0], lab.hosts[1])
            let unit = "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n"
            let setup = try ssh(lab, pi, """
                echo kept > /etc/lab-kept; echo gone > /tmp/lab-gone
                printf '\(unit)' > /etc/systemd/system/bootd.service && systemctl enable bootd 2>/dev/null
                nohup sleep 987.654 >/dev/null 2>&1 &
                cat /proc/sys/kernel/random/boot_id; grep '^memory' /proc/cgroups | cut -f4
                """)
            #expect(setup.status == 0, "\(setup.stderr)")
            let before = setup.stdout.split(separator: "\n").map(String.init)
            #expect(before.last == "0", "a Pi boots without the memory cgroup")
            #expect(try ssh(lab, pi, "systemctl is-active bootd").stdout == "inactive\n", "enabled, not started")
            let pcBootId = try ssh(lab, pc, "cat /proc/sys/kernel/random/boot_id").stdout
            // A session that is open when the host goes down is cut off.
            // A real process, not a task (blocked test threads must not delay it), and its own log line awaited.
            func sessions() -> Int { lab.sshdLog(pi.name).components(separatedBy: "command for root").count }
            let earlier = sessions()
            let session = try Background("/usr/bin/ssh", ["-F", "/dev/null", "-i", lab.keyPath, "-o", "BatchMode=yes",
                                                         "-o", "UserKnownHostsFile=\(lab.knownHostsPath)",
                                                         "root@\(pi.address)", "sleep 60"])
            #expect(eventually { sessions() > earlier })

            let reboot = try ssh(lab, pi, "nohup sh -c 'sleep 1; reboot' >/dev/null 2>&1 &")
            #expect(reboot.status == 0, "the reboot runs detached, after the session ended")
            try lab.waitForSSH(pi.name, timeout: 20, afterReboots: 0)
            #expect(lab.reboots(pi.name) == 1)
            let cut = session.wait()
            #expect(cut == 255, "\(session.stderrText)")
            #expect(!machineProcesses().contains("sleep\u{0}987.654"), "every process of the host ended")
            let after = try ssh(lab, pi, """
                cat /proc/sys/kernel/random/boot_id; cat /etc/lab-kept; ls /tmp; systemctl is-active bootd
                grep '^memory' /proc/cgroups | cut -f4
                """)
            let lines = after.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            #expect(lines.count >= 4 && lines[0] != before[0], "a new boot id: \(after.stdout)")
            #expect(Array(lines.dropFirst().prefix(4)) == ["kept", "active", "0", ""], "disk kept, /tmp fresh, unit started, no memory cgroup yet: \(after.stdout)")
            #expect(lab.serviceEvents(pi.name).last?.hasSuffix(" start bootd.service (boot)") == true)

            // The Pi's memory cgroup follows cmdline.txt, at the next boot.
            let flags = try ssh(lab, pi, """
                sed -i '1 s/$/ cgroup_memory=1 cgroup_enable=memory/' /boot/firmware/cmdline.txt
                grep '^memory' /proc/cgroups | cut -f4
                """)
            #expect(flags.stdout == "0\n", "not before a reboot")
            _ = try ssh(lab, pi, "shutdown -r now")
            try lab.waitForSSH(pi.name, timeout: 20, afterReboots: 1)
            let cgroup = try ssh(lab, pi, "grep '^memory' /proc/cgroups | cut -f4; cat /proc/cmdline")
            #expect(cgroup.stdout.hasPrefix("1\nconsole=serial0,115200 "), "\(cgroup.stdout)")
            #expect(cgroup.stdout.hasSuffix(" rootwait cgroup_memory=1 cgroup_enable=memory\n"))
            #expect(lab.reboots(pi.name) == 2)
            let shutdownStops = lab.serviceEvents(pi.name).filter { $0.hasSuffix(" stop bootd.service (shutdown)") }
            #expect(shutdownStops.count == 1, "bootd ran during the second reboot only")

            // The other host was not touched; systemctl reboot works as well.
            #expect(try ssh(lab, pc, "cat /proc/sys/kernel/random/boot_id").stdout == pcBootId)
            #expect(lab.reboots(pc.name) == 0)
            _ = try ssh(lab, pc, "systemctl reboot")
            try lab.waitForSSH(pc.name, timeout: 20, afterReboots: 0)
            #expect(try ssh(lab, pc, "cat /proc/sys/kernel/random/boot_id").stdout != pcBootId)
        }
    }

    @Test func downEndsAHostHalfWayThroughAReboot() throws {
        let lab = try Lab.up(hosts: 2)
        let env = try String(contentsOfFile: lab.directory + "/lab.env", encoding: .utf8)
        let id = try #require(env.split(separator: "\n").first { $0.hasPrefix("LAB_ID=") }?.dropFirst(7))
        _ = try lab.exec("lab-1", "reboot")
        #expect(eventually(timeout: 5) { lab.reboots("lab-1") == 1 })   // the launcher is booting it again
        try lab.down()
        let namespaces = try run("/usr/bin/ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains("pvlab\(id)-"))
        #expect(!machineProcesses().contains(lab.directory), "a process of the lab survived down")
    }

    /// The command lines of every process on the machine, NUL-separated words, one process per line.
    func machineProcesses() -> String {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
        return pids.compactMap { try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8) }.joined(separator: "\n")
    }

    @Test func runDrainsBothStreamsAndSurvivesAChildThatIgnoresStdin() throws {
        let big = try run("/bin/sh", ["-c", "head -c 3000000 /dev/zero | tr '\\0' o; head -c 3000000 /dev/zero | tr '\\0' e >&2; exit 3"])
        #expect(big.status == 3)
        #expect(big.stdout.utf8.count == 3_000_000 && big.stderr.utf8.count == 3_000_000)
        let ignored = try run("true", [], stdin: String(repeating: "x", count: 1_000_000))
        #expect(ignored.status == 0)
        let echoed = try run("/bin/cat", [], stdin: "line\n")
        #expect(echoed.stdout == "line\n")
    }

    @Test func labScriptExplainsItsUsage() throws {
        let noCommand = try run(Repo.labScript, [])
        #expect(noCommand.status == 2)
        #expect(noCommand.stderr.contains("usage: scripts/lab up"))
        let badHosts = try run(Repo.labScript, ["up", "--dir", "/tmp/never-made-\(UUID().uuidString)", "--hosts", "x"])
        #expect(badHosts.status == 2)
        #expect(badHosts.stderr.contains("--hosts must be a number"))
        let badPi = try run(Repo.labScript, ["up", "--dir", "/tmp/never-made", "--hosts", "2", "--pi", "5"])
        #expect(badPi.stderr.contains("--pi: host 5 does not exist"))
    }
}
