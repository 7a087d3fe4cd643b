import Engine
import Facts
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Inventory
import Steps
import Testing

/// `verify` reads a plan report as test cases, and writes them as JUnit XML that parses back with the same counts.
@Suite struct VerificationTests {
    func inventory() throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            k3s: {version: v1.31.4+k3s1, token: "${env:T}", airgap: {directory: /srv/k3s}}
            hosts:
              - {name: s1, address: 10.0.0.1, roles: [server]}
              - {name: a1, address: 10.0.1.1, roles: [agent]}
            """, path: "/srv/inventory.yaml", environment: ["HOME": "/root", "T": "token"])
    }

    let amd64 = HostFacts(os: .init(id: "debian", prettyName: "Debian GNU/Linux 12 (bookworm)"), arch: "x86_64")

    func verify(_ report: HostReport, _ host: String) throws -> HostVerification {
        let inventory = try inventory()
        return Verification.verify(report, host: try #require(inventory.host(named: host)), inventory: inventory,
                                   steps: StepCatalog.steps(for: inventory), inventoryArgument: "inv.yaml")
    }

    func check(_ result: HostVerification, _ name: String) throws -> VerificationCase {
        try #require(result.cases.first { $0.check == name }, "no \(name) in \(result.cases.map(\.check))")
    }

    @Test func aConvergedHostPassesEveryCheckOnePerStep() throws {
        let report = HostReport(name: "a1", steps: [
            StepOutcome(id: "base-packages", status: .ok, message: "present"),
            StepOutcome(id: "k3s-service", status: .ok, message: "k3s-agent active, v1.31.4+k3s1"),
        ], facts: amd64)
        let result = try verify(report, "a1")
        #expect(result.cases.map(\.check) == ["ssh", "facts", "base-packages", "k3s-service", "no-drift"])
        #expect(result.passed)
        #expect(try check(result, "k3s-service").title == K3sServiceStep().summary)
        #expect(try check(result, "facts").message == "x86_64, Debian GNU/Linux 12 (bookworm), no board (not a Raspberry Pi)")
    }

    @Test func aPendingStepFailsWithWhatDiffersAndTheApplyThatFixesIt() throws {
        let report = HostReport(name: "a1", steps: [
            StepOutcome(id: "k3s-config", status: .ok, message: "matches"),
            StepOutcome(id: "k3s-service", status: .pending, message: "k3s-agent is inactive"),
        ], facts: amd64)
        let result = try verify(report, "a1")
        let service = try check(result, "k3s-service")
        #expect(!service.passed && service.kind == "drift" && service.message == "k3s-agent is inactive")
        #expect(service.fix == "provision apply inv.yaml --host a1 (installs k3s at the pinned version and starts it)")
        let drift = try check(result, "no-drift")
        #expect(!drift.passed && drift.message == "1 step(s) differ: k3s-service")
        #expect(result.cases.filter { !$0.passed }.map(\.check) == ["k3s-service", "no-drift"])
    }

    @Test func anUnreachableHostFailsSSHWithTheReasonAndNothingElseIsClaimed() throws {
        let report = HostReport(name: "a1", steps: [], error: "host key refused: it changed")
        let result = try verify(report, "a1")
        #expect(result.cases.map(\.check) == ["ssh", "no-drift"])
        let ssh = try check(result, "ssh")
        #expect(!ssh.passed && ssh.message == "host key refused: it changed" && ssh.kind == "unreachable")
        #expect(ssh.fix?.contains("root@10.0.1.1:22") == true)
    }

    @Test func aPiWithoutTheMemoryCgroupAndAnArchitectureWithoutK3sFailTheFacts() throws {
        let pi = HostFacts(arch: "aarch64", board: "Raspberry Pi 4 Model B Rev 1.5", memoryCgroup: false)
        let piCase = try check(try verify(HostReport(name: "a1", steps: [], facts: pi), "a1"), "facts")
        #expect(!piCase.passed && piCase.message.hasPrefix("the memory cgroup is off"))
        #expect(piCase.fix?.hasPrefix("provision apply inv.yaml --host a1") == true)
        var on = pi
        on.memoryCgroup = true
        #expect(try check(try verify(HostReport(name: "a1", steps: [], facts: on), "a1"), "facts").passed)
        let risc = HostFacts(arch: "riscv64")
        let riscCase = try check(try verify(HostReport(name: "a1", steps: [], facts: risc), "a1"), "facts")
        #expect(!riscCase.passed && riscCase.message.hasPrefix("k3s has no release for architecture riscv64"))
    }

    @Test func nodesBeyondTheInventoryFailOnlyTheExtraNodeCheckOnTheFirstServer() throws {
        let nodes = [#"{"metadata":{"name":"s1","labels":{"node-role.kubernetes.io/control-plane":"true"}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
                     #"{"metadata":{"name":"a1","labels":{}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
                     #"{"metadata":{"name":"stray","labels":{}},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#]
        let json = #"{"items":["# + nodes.joined(separator: ",") + "]}"
        let inventory = try inventory()
        let decision = try K3sReadyStep().decide(StepContext(host: try #require(inventory.host(named: "s1")),
                                                             inventory: inventory, facts: amd64, probe: json,
                                                             templates: .init()))
        let report = HostReport(name: "s1", steps: [StepOutcome(id: "k3s-ready", status: .ok, message: decision.reason)],
                                facts: amd64)
        let result = try verify(report, "s1")
        #expect(result.cases.filter { !$0.passed }.map(\.check) == ["no-extra-node"])
        #expect(try check(result, "no-extra-node").message == "nodes not in the inventory: stray")
        let clean = #"{"items":["# + nodes.dropLast().joined(separator: ",") + "]}"
        let fine = try K3sReadyStep().decide(StepContext(host: try #require(inventory.host(named: "s1")),
                                                         inventory: inventory, facts: amd64, probe: clean, templates: .init()))
        let passing = try verify(HostReport(name: "s1", steps: [StepOutcome(id: "k3s-ready", status: .ok, message: fine.reason)],
                                            facts: amd64), "s1")
        #expect(passing.passed && passing.cases.map(\.check).contains("no-extra-node"))
    }

    static let tricky = "a <b> & \"c\" 'd'\nline two \u{1B}[31mred\u{1B}[0m"

    func sample() -> [HostVerification] {
        [HostVerification(name: "lab-1", cases: [
            VerificationCase(check: "ssh", title: "SSH", passed: true, message: "connected", durationMs: 12),
            VerificationCase(check: "k3s-config", title: "config <yaml>", passed: false, message: Self.tricky,
                             kind: "drift", fix: "provision apply 'my inv.yaml' --host lab-1", durationMs: 1500),
         ], durationMs: 2000),
         HostVerification(name: "lab-2 & co", cases: [
            VerificationCase(check: "no-drift", title: "no drift", passed: true, message: "all 3 step(s) match"),
         ], durationMs: 900)]
    }

    @Test func junitCountsFailuresPerHostAndInTotal() {
        let xml = JUnitReport.render(sample())
        #expect(xml.contains("<testsuites name=\"provision verify\" tests=\"3\" failures=\"1\" errors=\"0\" time=\"2.000\">"))
        #expect(xml.contains("<testsuite name=\"lab-1\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"2.000\">"))
        #expect(xml.contains("<testsuite name=\"lab-2 &amp; co\" tests=\"1\" failures=\"0\""))
        #expect(!xml.contains("\u{1B}"))
    }

    #if canImport(FoundationXML) || os(macOS)
    @Test func junitParsesBackWithEveryCharacterEscaped() throws {
        let document = try XMLDocument(xmlString: JUnitReport.render(sample()), options: [])
        let root = try #require(document.rootElement())
        #expect(root.name == "testsuites")
        let suites = root.elements(forName: "testsuite")
        #expect(suites.map { $0.attribute(forName: "name")?.stringValue } == ["lab-1", "lab-2 & co"])
        let cases = suites[0].elements(forName: "testcase")
        #expect(cases.count == 2 && suites[1].elements(forName: "testcase").count == 1)
        #expect(cases[0].attribute(forName: "classname")?.stringValue == "lab-1")
        #expect(cases[0].elements(forName: "failure").isEmpty)
        #expect(cases[1].attribute(forName: "name")?.stringValue == "k3s-config: config <yaml>")
        #expect(cases[1].attribute(forName: "time")?.stringValue == "1.500")
        let failure = try #require(cases[1].elements(forName: "failure").first)
        let withoutEscapes = Self.tricky.replacing("\u{1B}", with: "")
        #expect(failure.attribute(forName: "message")?.stringValue == withoutEscapes)
        #expect(failure.attribute(forName: "type")?.stringValue == "drift")
        #expect(failure.stringValue == withoutEscapes + "\nfix: provision apply 'my inv.yaml' --host lab-1")
    }
    #endif
}
