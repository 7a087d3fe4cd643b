import Foundation
import Testing
import Facts
import Inventory
import Steps
import Templates

/// Steps decide from facts and probe output alone: these are the decisions for captured outputs.
@Suite struct StepDecisionTests {
    let inventory: Inventory
    let host: InventoryHost
    let templates = TemplateSet()

    init() throws {
        inventory = try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1}
            hosts:
              - {name: pi-1, address: 192.168.1.11, roles: [server]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
        host = inventory.hosts[0]
    }

    func context(_ probe: String, facts: HostFacts = HostFacts()) -> StepContext {
        StepContext(host: host, inventory: inventory, facts: facts, probe: probe, templates: templates)
    }

    // MARK: base-packages

    @Test func packagesAllInstalledIsOk() throws {
        let probe = "ca-certificates ii \ncurl ii \niptables ii \ngnupg ii "
        #expect(try BasePackagesStep().decide(context(probe)) == .ok("ca-certificates, curl, iptables, gnupg installed"))
    }

    @Test func aMissingOrRemovedPackageIsInstalledNonInteractivelyWithALockWait() throws {
        // iptables unknown to dpkg; gnupg removed with its config left ("rc").
        let decision = try BasePackagesStep().decide(context("ca-certificates ii \ncurl ii \ngnupg rc "))
        #expect(decision.reason == "missing packages: iptables, gnupg")
        guard case .run(let command) = decision.actions.first else { Issue.record("no command"); return }
        #expect(command.hasPrefix("{ DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true; } && "))
        #expect(command.contains("apt-get -o DPkg::Lock::Timeout=300 -q update && "))
        #expect(command.hasSuffix("install -y --no-install-recommends iptables gnupg"))
    }

    // MARK: managed files

    @Test func managedFileProbeOutputIsReadBack() throws {
        let digest = String(repeating: "a", count: 64)
        #expect(try ManagedFile.remote("\(digest) 644 root:root") == ManagedFile.Remote(digest: digest, mode: 0o644, owner: "root:root"))
        #expect(try ManagedFile.remote("absent") == nil)
        #expect(throws: StepError.self) { try ManagedFile.remote("sha256sum: permission denied") }
    }

    @Test func managedFileWritesOnlyWhatDiffers() {
        let file = ManagedFile(path: "/etc/x.conf")
        let content = "a = 1\n"
        let digest = ManagedFile.digest(content)
        #expect(file.decide(content: content, remote: .init(digest: digest, mode: 0o644, owner: "root:root")) == .ok("/etc/x.conf is up to date"))
        #expect(file.decide(content: content, remote: nil).actions == [file.write(content)])
        let edited = file.decide(content: content, remote: .init(digest: String(repeating: "0", count: 64), mode: 0o644, owner: "root:root"))
        #expect(edited.reason.hasPrefix("/etc/x.conf differs from its template"))
        #expect(edited.actions == [file.write(content)])
        let loose = file.decide(content: content, remote: .init(digest: digest, mode: 0o666, owner: "pi:pi"))
        #expect(loose.actions == [.run("chmod 644 /etc/x.conf && chown root:root /etc/x.conf")])
    }

    // MARK: kernel-forwarding

    @Test func forwardingFileFromTheTemplateAndTheRunningValue() throws {
        let step = KernelForwardingStep()
        let content = try templates.render("sysctl-k3s.conf.mustache", ["host": ["name": "pi-1"]])
        #expect(content.contains("net.ipv4.ip_forward = 1"))
        #expect(content.contains("for pi-1"))
        let good = "\(ManagedFile.digest(content)) 644 root:root"
        #expect(try step.decide(context("\(good)\n1")).actions.isEmpty)
        #expect(try step.decide(context("\(good)\n0")).actions == [.run("sysctl -q -p /etc/sysctl.d/90-provision-k3s.conf")])
        let missing = try step.decide(context("absent\n0"))
        #expect(missing.actions == [KernelForwardingStep.file.write(content), .run("sysctl -q -p /etc/sysctl.d/90-provision-k3s.conf")])
    }

    // MARK: pi-cgroups

    let piFacts = HostFacts(board: "Raspberry Pi 4 Model B Rev 1.5", memoryCgroup: false,
                            kernelCmdline: "console=tty1 root=PARTUUID=4e639091-02 rootwait")

    @Test func piWithoutFlagsGetsThemAppendedAndOneReboot() throws {
        let decision = try RaspberryPiCgroupsStep().decide(context(
            "path=/boot/firmware/cmdline.txt\nline=console=tty1 root=PARTUUID=4e639091-02 rootwait", facts: piFacts))
        #expect(decision.reason == "cgroup_memory=1 cgroup_enable=memory missing from /boot/firmware/cmdline.txt")
        #expect(decision.actions == [
            .writeFile(path: "/boot/firmware/cmdline.txt",
                       content: "console=tty1 root=PARTUUID=4e639091-02 rootwait cgroup_memory=1 cgroup_enable=memory\n",
                       mode: nil, owner: nil),
            .reboot(reason: "boot with the memory cgroup"),
        ])
    }

    @Test func flagsInTheFileButNotInTheRunningKernelMeanRebootOnly() throws {
        let decision = try RaspberryPiCgroupsStep().decide(context(
            "path=/boot/cmdline.txt\nline=rootwait cgroup_memory=1 cgroup_enable=memory", facts: piFacts))
        #expect(decision.actions == [.reboot(reason: "boot with the memory cgroup")])
    }

    @Test func aPiBootedWithTheFlagsIsOk() throws {
        var facts = piFacts
        facts.kernelCmdline = "rootwait cgroup_memory=1 cgroup_enable=memory"
        facts.memoryCgroup = true
        let decision = try RaspberryPiCgroupsStep().decide(context(
            "path=/boot/firmware/cmdline.txt\nline=rootwait cgroup_memory=1 cgroup_enable=memory", facts: facts))
        #expect(decision.actions.isEmpty)
    }

    @Test func onlyPisAreConcerned() {
        #expect(RaspberryPiCgroupsStep().applies(to: host, facts: piFacts))
        #expect(!RaspberryPiCgroupsStep().applies(to: host, facts: HostFacts(board: nil)))
    }

    @Test func aPiWithoutCmdlineTxtIsAnError() {
        #expect(throws: StepError.self) { try RaspberryPiCgroupsStep().decide(context("", facts: piFacts)) }
    }
}

@Suite struct TemplateTests {
    @Test func valuesAreNotHTMLEscaped() throws {
        let folder = NSTemporaryDirectory() + "templates-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/host", withIntermediateDirectories: true)
        try "token: {{token}}\n".write(toFile: folder + "/host/t.mustache", atomically: true, encoding: .utf8)
        let rendered = try TemplateSet(overrideDirectory: folder).render("t.mustache", ["token": "K10a&b<c>::server:\"x\""])
        #expect(rendered == "token: K10a&b<c>::server:\"x\"\n")
    }

    @Test func anOverrideBesideTheInventoryWinsOverTheBuiltIn() throws {
        let folder = NSTemporaryDirectory() + "templates-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/host", withIntermediateDirectories: true)
        try "net.ipv4.ip_forward = 1\n# site override\n".write(toFile: folder + "/host/sysctl-k3s.conf.mustache",
                                                             atomically: true, encoding: .utf8)
        let overridden = try TemplateSet(overrideDirectory: folder).render("sysctl-k3s.conf.mustache", [:])
        #expect(overridden.contains("# site override"))
        let builtIn = try TemplateSet(overrideDirectory: NSTemporaryDirectory() + "none").render("sysctl-k3s.conf.mustache", [:])
        #expect(!builtIn.contains("# site override"))
    }
}
