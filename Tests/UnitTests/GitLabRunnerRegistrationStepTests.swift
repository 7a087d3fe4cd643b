import Facts
import Foundation
import Inventory
@testable import Steps
import Templates
import Testing
import TOMLKit

/// Runner registration decides from config.toml (probe) and GitLab's answers: create, write, keep, re-create, delete.
@Suite struct GitLabRunnerRegistrationStepTests {
    let step = GitLabRunnerRegistrationStep()

    func inventory(runners: String = "[{name: docker, projectId: 200, tags: [docker, pi], image: \"docker:27\", privileged: true, volumes: [/certs/client, /cache]}]") throws -> Inventory {
        try InventoryLoader.parse(yaml: """
            gitlab: {url: "https://gitlab.example.com", token: "${env:GT}", runnerPackage: {version: 17.7.1}, runners: \(runners)}
            hosts:
              - {name: r1, address: 10.0.0.2, roles: [runner]}
            """, path: "/tmp/inventory.yaml", environment: ["HOME": "/root", "GT": "glpat-secret"])
    }

    func context(_ inventory: Inventory, probe: String, gitlab: [GitLabQuery: GitLabAnswer] = [:],
                 shared: [String: String] = [:]) throws -> StepContext {
        StepContext(host: try #require(inventory.host(named: "r1")), inventory: inventory, facts: HostFacts(),
                    probe: probe, templates: TemplateSet(), shared: shared, gitlab: gitlab)
    }

    func probe(_ config: String?) -> String {
        guard let config else { return "absent\nsystem_id=s_0123456789ab\nca=\n@@config\n" }
        return "\(ManagedFile.digest(config)) 600 root:root\nsystem_id=s_0123456789ab\nca=\n@@config\n\(config)"
    }

    /// config.toml as the step writes it after GitLab created runner 9 with `token`.
    func written(_ inventory: Inventory, token: String = "glrt-new") throws -> String {
        let decision = try step.decide(try context(inventory, probe: probe(nil), shared: ["gitlab-runner:r1-docker": "9 \(token)"]))
        guard case .writeFile(let path, let content, let mode, _) = decision.actions.first else {
            Issue.record("no write: \(decision)"); return ""
        }
        #expect(path == "/etc/gitlab-runner/config.toml" && mode == 0o600)
        #expect(decision.actions.last == .run("gitlab-runner verify"))
        return content
    }

    @Test func aNewRunnerIsCreatedInGitLabFirstThenWrittenToConfigToml() throws {
        let inventory = try inventory()
        let first = try step.decide(try context(inventory, probe: probe(nil)))
        guard case .gitlab(.createRunner(let creation, let key)) = first.actions.first, first.actions.count == 1 else {
            Issue.record("no creation: \(first)"); return
        }
        #expect(key == "gitlab-runner:r1-docker")
        #expect(creation.description == "r1-docker" && creation.tags == ["docker", "pi"] && creation.projectID == 200)
        #expect(first.reason == "runner r1-docker is not registered")
        let content = try written(inventory)
        let table = try TOMLTable(string: content)
        let runner = try #require(table["runners"]?.array?[0]?.table)
        #expect(runner["name"]?.string == "r1-docker" && runner["id"]?.int == 9 && runner["token"]?.string == "glrt-new")
        let docker = try #require(runner["docker"]?.table)
        #expect(docker["privileged"]?.bool == true && docker["image"]?.string == "docker:27")
        #expect(docker["volumes"]?.array?.compactMap { $0.string } == ["/certs/client", "/cache"])
    }

    @Test func aRunnerWhoseTokenVerifiesIsKeptAndWaitedForUntilOnline() throws {
        let inventory = try inventory()
        let config = try written(inventory, token: "glrt-kept")
        var answers: [GitLabQuery: GitLabAnswer] = [.verifyRunner(token: "glrt-kept", systemID: "s_0123456789ab"): .valid(id: 9)]
        let queries = step.gitlabQueries(try context(inventory, probe: probe(config)))
        #expect(queries == [.verifyRunner(token: "glrt-kept", systemID: "s_0123456789ab"), .runner(id: 9)])
        answers[.runner(id: 9)] = .runner(status: "never_contacted")
        let waiting = try step.decide(try context(inventory, probe: probe(config), gitlab: answers))
        #expect(waiting.actions == [.awaitConvergence(timeout: GitLabRunnerRegistrationStep.onlineTimeout)])
        #expect(waiting.reason.contains("r1-docker (never_contacted)"))
        answers[.runner(id: 9)] = .runner(status: "online")
        #expect(try step.decide(try context(inventory, probe: probe(config), gitlab: answers)) == .ok("r1-docker (#9) registered, verified and online"))
    }

    @Test func tagsOrPausedChangedInGitLabArePutBackInPlaceOnlyForRunnersProvisionMade() throws {
        let inventory = try inventory()
        let config = try written(inventory, token: "glrt-kept")
        let wanted = GitLabRunnerRegistrationStep.creation(
            try #require(GitLabRunnerRegistrationStep.wanted(try context(inventory, probe: "")).first), inventory: inventory.path)
        var drifted = wanted
        drifted.tags = ["docker"]
        drifted.paused = true
        var answers: [GitLabQuery: GitLabAnswer] = [.verifyRunner(token: "glrt-kept", systemID: "s_0123456789ab"): .valid(id: 9),
                                                    .runner(id: 9): .runner(status: "online", settings: drifted)]
        let update = try step.decide(try context(inventory, probe: probe(config), gitlab: answers))
        #expect(update.reason == "runner r1-docker (#9) in GitLab: tags docker (inventory: docker,pi), paused true (inventory: false)")
        #expect(update.actions == [.gitlab(.updateRunner(id: 9, wanted))])
        // The same tags in another order are the same tags.
        var reordered = wanted
        reordered.tags = ["pi", "docker"]
        answers[.runner(id: 9)] = .runner(status: "online", settings: reordered)
        #expect(try step.decide(try context(inventory, probe: probe(config), gitlab: answers)) == .ok("r1-docker (#9) registered, verified and online"))
        // A runner someone made by hand (no provision maintenance note) keeps its settings.
        drifted.maintenanceNote = "made in the UI"
        answers[.runner(id: 9)] = .runner(status: "online", settings: drifted)
        #expect(try step.decide(try context(inventory, probe: probe(config), gitlab: answers)).actions.isEmpty)
    }

    @Test func aRunnerDeletedInGitLabIsCreatedAgainAndABlockNoLongerListedIsDeleted() throws {
        let inventory = try inventory()
        let config = try written(inventory, token: "glrt-gone")
        let gone = try step.decide(try context(inventory, probe: probe(config),
                                               gitlab: [.verifyRunner(token: "glrt-gone", systemID: "s_0123456789ab"): .invalid]))
        guard case .gitlab(.createRunner)? = gone.actions.first else { Issue.record("not re-created: \(gone)"); return }
        #expect(gone.reason == "runner r1-docker is no longer known to GitLab")

        // The inventory drops the runner: deleted in GitLab while its token works, then the block goes.
        let without = try self.inventory(runners: "[]")
        let stale = try step.decide(try context(without, probe: probe(config),
                                                gitlab: [.verifyRunner(token: "glrt-gone", systemID: "s_0123456789ab"): .valid(id: 9)]))
        #expect(stale.actions == [.gitlab(.deleteRunner(token: "glrt-gone", description: "r1-docker"))])
        let after = try step.decide(try context(without, probe: probe(config),
                                                gitlab: [.verifyRunner(token: "glrt-gone", systemID: "s_0123456789ab"): .invalid]))
        guard case .writeFile(_, let content, _, _)? = after.actions.first else { Issue.record("no rewrite: \(after)"); return }
        #expect(!content.contains("[[runners]]") && !content.contains("glrt-gone"))
    }

    @Test func gitLabUnreachableFailsTheStepNamingTheRunnerAndNothingIsCreated() throws {
        let inventory = try inventory()
        let config = try written(inventory, token: "glrt-kept")
        #expect(throws: StepError.self) {
            try step.decide(try context(inventory, probe: probe(config),
                                        gitlab: [.verifyRunner(token: "glrt-kept", systemID: "s_0123456789ab"): .failed("GitLab answered 500")]))
        }
        // Plans and logs show what will happen in GitLab, never a token.
        #expect(!Action.gitlab(.deleteRunner(token: "glrt-kept", description: "r1-docker")).summary.contains("glrt-kept"))
    }

    /// A runner an earlier run created but never wrote to config.toml (nobody has its token) is found by description,
    /// this inventory's maintenance note and never_contacted, and deleted before the next one is created.
    @Test func aRunnerAnEarlierRunCreatedButNeverWroteIsDeletedBeforeANewOneIsCreated() throws {
        let inventory = try inventory()
        let leftovers = GitLabQuery.leftoverRunners(description: "r1-docker",
                                                    maintenanceNote: "managed by provision (/tmp/inventory.yaml)")
        // Asked only while there is a runner to create: not once it is in config.toml, nor right after creating it.
        #expect(step.gitlabQueries(try context(inventory, probe: probe(nil))).contains(leftovers))
        #expect(!step.gitlabQueries(try context(inventory, probe: probe(nil), shared: ["gitlab-runner:r1-docker": "9 glrt-new"]))
            .contains(leftovers))
        #expect(!step.gitlabQueries(try context(inventory, probe: probe(try written(inventory)))).contains(leftovers))

        let found = try step.decide(try context(inventory, probe: probe(nil), gitlab: [leftovers: .runnerIDs([7, 8])]))
        #expect(found.actions.count == 3)
        #expect(Array(found.actions.prefix(2)) == [.gitlab(.deleteLeftoverRunner(id: 7, description: "r1-docker")),
                                                   .gitlab(.deleteLeftoverRunner(id: 8, description: "r1-docker"))])
        guard case .gitlab(.createRunner)? = found.actions.last else { Issue.record("no creation: \(found)"); return }
        #expect(found.reason.contains("r1-docker #7, #8 in GitLab was created by an earlier run but never written to config.toml"))
        #expect(found.actions[0].summary.contains("#7"))

        // GitLab cannot list runners for this token: the runner is still created, and the plan says what was not checked.
        let unchecked = try step.decide(try context(inventory, probe: probe(nil), gitlab: [leftovers: .failed("403 Forbidden")]))
        guard case .gitlab(.createRunner)? = unchecked.actions.first, unchecked.actions.count == 1 else {
            Issue.record("no creation: \(unchecked)"); return
        }
        #expect(unchecked.reason.contains("warning: cannot look for a runner r1-docker that an interrupted run left in GitLab (403 Forbidden)"))
    }
}
