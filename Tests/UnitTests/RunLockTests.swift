import Foundation
import Testing
@testable import Journal

@Suite struct RunLockTests {
    let folder: TemporaryFolder
    let path: String

    init() throws {
        folder = try TemporaryFolder()
        path = JournalLocation.lock(forInventory: folder.inventory)
    }

    /// flock belongs to an open file description, so a second open in this same process is a second contender.
    @Test func aSecondAcquireIsRefusedNamingTheHolder() throws {
        let first = try RunLock.acquire(path: path, command: "apply lab.yaml")
        #expect(first.tookOverFrom == nil)
        #expect(first.holder.pid == getpid())
        #expect(try permissions(path) == 0o600)

        let error = #expect(throws: RunLockError.self) { try RunLock.acquire(path: path, command: "apply lab.yaml") }
        guard case .held(let holder, let heldPath) = error else {
            Issue.record("expected .held, got \(String(describing: error))")
            return
        }
        #expect(holder == first.holder)
        #expect(heldPath == path)
        first.release()
    }

    @Test func releaseFreesTheLockForTheNext() throws {
        let first = try RunLock.acquire(path: path, command: "apply")
        first.release()
        first.release()  // twice is harmless
        let second = try RunLock.acquire(path: path, command: "apply")
        #expect(second.tookOverFrom == nil)
        second.release()

        // Letting go of the object releases too.
        do { _ = try RunLock.acquire(path: path, command: "apply") }
        #expect(try RunLock.acquire(path: path, command: "apply").tookOverFrom == nil)
    }

    @Test func aDeadHoldersLockIsTakenOver() throws {
        let dead = LockHolder(pid: try exitedProcessID(), machine: "ci-box",
                              startedAt: Date(timeIntervalSince1970: 1_795_559_467), command: "apply")
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try FileManager.default.createDirectory(atPath: folder.path + "/.provision", withIntermediateDirectories: true)
        try encoder.encode(dead).write(to: URL(fileURLWithPath: path))

        let lock = try RunLock.acquire(path: path, command: "apply")
        #expect(lock.tookOverFrom == dead)
        #expect(lock.holder.pid == getpid())
        lock.release()
    }

    @Test(arguments: ["apply", "provision apply"])
    func theRefusalSaysWhoAndWhatToDo(command: String) {
        let holder = LockHolder(pid: 4242, machine: "ci-box", startedAt: Date(timeIntervalSince1970: 1_795_559_467),
                                command: command)
        #expect(RunLockError.held(holder, path: "/x/.provision/lab.lock").description
            == "another provision apply holds /x/.provision/lab.lock: pid 4242 on ci-box, "
            + "started 2026-11-24 22:31:07 UTC (provision apply); wait for it or stop it")
    }
}
