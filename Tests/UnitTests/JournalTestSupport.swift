import Foundation

/// A fresh folder under the system temp directory, removed when the test lets go of it.
final class TemporaryFolder {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "journal-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// An inventory path inside the folder; the inventory itself need not exist.
    var inventory: String { path + "/lab.yaml" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The pid of a process that has already exited: what a run or lock killed with -9 leaves behind.
func exitedProcessID() throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/true")
    try process.run()
    process.waitUntilExit()
    return process.processIdentifier
}

func permissions(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
}
