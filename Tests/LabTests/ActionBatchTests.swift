import Facts
import Foundation
@testable import Engine
import Inventory
import LabSupport
import SSHTransport
import Steps
import Templates
import Testing

/// A step's consecutive `run` actions reach the host as one command, and still behave as if each ran alone.
@Suite(.serialized) struct ActionBatchTests {
    func connect(_ lab: Lab) async throws -> SSHConnection {
        let host = lab.hosts[0]
        return try await SSHConnection.connect(SSHOptions(
            name: host.name, address: host.address, port: 22, user: "root",
            authentication: [.keyFile(path: lab.keyPath, passphrase: nil)], knownHostsPath: lab.knownHostsPath,
            hostKeyPolicy: .strict, pinnedFingerprint: nil, sudoPassword: nil, connectTimeout: 5))
    }

    @Test func consecutiveCommandsRunAsOneAndTheFirstFailureStopsTheRestNamingItsCommand() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await connect(lab)
            // `exit 0` and `cd` end only their own action, as they would in a command of their own.
            let output = try await Converger.run(["cd /tmp && exit 0", "pwd; echo said >&2", "touch /srv/second"],
                                                 on: connection)
            #expect(output == "/root\nsaid\n")
            #expect(connection.statistics.commands == 1)
            do {
                _ = try await Converger.run(["echo first", "echo broken >&2; exit 4", "touch /srv/third"], on: connection)
                Issue.record("a failing action must fail the batch")
            } catch {
                #expect(String(describing: error) == "`echo broken >&2; exit 4` failed (exit 4): broken")
            }
            #expect(connection.statistics.commands == 2)
            let files = try lab.exec(lab.hosts[0].name, "ls /srv").stdout
            #expect(files.contains("second"))
            #expect(!files.contains("third"))
            await connection.close()
        }
    }

    /// Reports what /srv/marker holds, as a step's probe would.
    struct Marker: Step {
        let id = "marker"
        let summary = "the marker file"
        func probe(for host: InventoryHost) -> String { "cat /srv/marker 2>/dev/null || echo absent" }
        func decide(_ context: StepContext) throws -> Decision { .ok(context.probe) }
    }

    @Test func theLastBatchOfAChangeReadsTheHostAgainInTheSameCommand() async throws {
        try await withLab(hosts: 1) { lab in
            let connection = try await connect(lab)
            let host = InventoryHost(name: lab.hosts[0].name, address: lab.hosts[0].address, roles: [.agent],
                                     ssh: SSHSettings(keyPath: lab.keyPath, useAgent: false, knownHosts: lab.knownHostsPath),
                                     location: SourceLocation(file: "i.yaml", line: 1, column: 1))
            let (output, read) = try await Converger.runThenRead(["echo made > /srv/marker; echo done", "echo warned >&2"],
                                                                 host: host, steps: [Marker()], on: connection)
            // The commands' output alone; the read sees what they changed.
            #expect(output == "done\nwarned\n")
            #expect(read.1["marker"] == "made")
            #expect(read.0.hostname == lab.hosts[0].name)
            #expect(connection.statistics.commands == 1)

            // A failure is named as in `run`, and the host is not read.
            do {
                _ = try await Converger.runThenRead(["echo broken >&2; exit 3", "echo again > /srv/marker"],
                                                    host: host, steps: [Marker()], on: connection)
                Issue.record("a failing action must fail the batch")
            } catch {
                #expect(String(describing: error) == "`echo broken >&2; exit 3` failed (exit 3): broken")
            }
            #expect(try lab.exec(host.name, "cat /srv/marker").stdout == "made\n")
            await connection.close()
        }
    }

    /// Counts its probe's runs on the host.
    struct Earlier: Step {
        let id = "earlier"
        let summary = "a step before the change"
        func probe(for host: InventoryHost) -> String { "echo read >> /srv/earlier-probes; echo fine" }
        func decide(_ context: StepContext) throws -> Decision { .ok(context.probe) }
    }

    struct Changer: Step {
        let id = "changer"
        let summary = "sets /srv/state"
        func probe(for host: InventoryHost) -> String { "cat /srv/state 2>/dev/null || echo absent" }
        func decide(_ context: StepContext) throws -> Decision {
            context.probe == "set" ? .ok("set") : .change(reason: "not set", actions: [.run("echo set > /srv/state")])
        }
    }

    struct Later: Step {
        let id = "later"
        let summary = "reports what it read of /srv/state"
        func probe(for host: InventoryHost) -> String { "cat /srv/state 2>/dev/null || echo absent" }
        func decide(_ context: StepContext) throws -> Decision { .ok("read \(context.probe)") }
    }

    @Test func theCheckAfterAChangeReadsOnlyTheStepsAheadAndAsksAnUnchangedK3sForItsVersionOnce() async throws {
        try await withLab(hosts: 1) { lab in
            let name = lab.hosts[0].name
            // A k3s on the host that counts how often it is asked for its version.
            _ = try lab.exec(name, """
                printf '#!/bin/sh\necho asked >> /srv/k3s-asked\necho "k3s version v1.31.4+k3s1 (0123abcd)"\n' \
                  > /usr/local/bin/k3s && chmod 755 /usr/local/bin/k3s
                """)
            let inventory = try InventoryLoader.parse(yaml: """
                ssh: {user: root, keyPath: \(lab.keyPath), knownHosts: \(lab.knownHostsPath), hostKeyPolicy: strict}
                k3s: {version: v1.31.4+k3s1}
                hosts:
                  - {name: \(name), address: \(lab.hosts[0].address), roles: [server]}
                """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root"])
            let pool = ConnectionPool()
            let converger = Converger(inventory: inventory, steps: [Earlier(), Changer(), Later()], templates: TemplateSet(),
                                      pool: pool, settings: .init(mode: .apply))
            let reports = await converger.run(hosts: inventory.hosts)
            await pool.closeAll()
            let steps = Dictionary(uniqueKeysWithValues: (reports.first?.steps ?? []).map { ($0.id, $0) })
            #expect(steps["changer"]?.status == .changed)
            // The step after the change was judged on the host as the change left it.
            #expect(steps["later"]?.message == "read set")
            #expect(reports.first?.facts?.versions.k3s == "v1.31.4+k3s1")
            // The check after the change did not read the finished step again, nor ask the same k3s binary again.
            #expect(try lab.exec(name, "cat /srv/earlier-probes").stdout == "read\n")
            #expect(try lab.exec(name, "cat /srv/k3s-asked").stdout == "asked\n")

            // A later run told what this one found (the journal's, in `provision apply`) does not ask again either.
            let programs = try #require(reports.first?.facts?.programs)
            let later = Converger(inventory: inventory, steps: [Earlier(), Changer(), Later()], templates: TemplateSet(),
                                  pool: pool, settings: .init(mode: .apply, knownPrograms: [name: programs]))
            let again = await later.run(hosts: inventory.hosts)
            await pool.closeAll()
            #expect(again.first?.facts?.versions.k3s == "v1.31.4+k3s1")
            #expect(try lab.exec(name, "cat /srv/k3s-asked").stdout == "asked\n")

        }
    }
}
