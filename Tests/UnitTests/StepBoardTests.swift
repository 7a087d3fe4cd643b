import Testing
@testable import Engine

/// A host re-reads itself after another host's awaited change only if it last read itself before that change.
@Suite struct StepBoardTests {
    @Test func aChangeCountsForReadsStartedBeforeItFinishedOnly() async {
        let board = StepBoard()
        let readBefore = ContinuousClock.now
        #expect(await board.changed(host: "s1", step: "k3s-service", since: readBefore) == false)
        await board.finish(host: "s1", step: "k3s-service", converged: true, changed: true)
        await board.finish(host: "s1", step: "k3s-config", converged: true, changed: false)
        let readAfter = ContinuousClock.now
        #expect(await board.changed(host: "s1", step: "k3s-service", since: readBefore))
        #expect(await board.changed(host: "s1", step: "k3s-service", since: readAfter) == false)
        #expect(await board.changed(host: "s1", step: "k3s-config", since: readBefore) == false)
        #expect(await board.wait(host: "s1", step: "k3s-service"))
    }
}
