import Foundation

/// Where the package and its built products are, for tests that run scripts or the `provision` binary.
public enum Repo {
    /// The package root: this file is Tests/LabSupport/Repo.swift inside it.
    public static var root: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()   // Tests/LabSupport
            .deletingLastPathComponent()   // Tests
            .deletingLastPathComponent()   // the package
            .path
    }

    /// The `provision` executable built next to the running test bundle (both live in the build's debug folder).
    public static var provisionBinary: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("provision").path
    }

    /// scripts/lab, which builds and tears down the lab.
    public static var labScript: String { root + "/scripts/lab" }
}
