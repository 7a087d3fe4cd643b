// swift-tools-version:6.2
// Layers, bottom to top (see ../shared/STYLE.md): the C shims, basics, the SSH transport and the HTTP client, the
// GitLab client, the inventory, facts, the engine, the commands, and a one-line executable. Only SSHTransport imports
// CLibSSH2 and only HTTPClient imports CLibCurl.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "provision",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "provision", targets: ["provision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // C shim over Debian's libssh2 (libssh2-1-dev).
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),
        // C shim over Debian's libcurl (libcurl4-openssl-dev): typed forms of its variadic setters.
        .systemLibrary(name: "CLibCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Shell quoting, redaction, bounded concurrency, logging: no I/O of its own.
        .target(name: "ProvisionBasics",
                dependencies: [.product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // SSH sessions, exec, SFTP and host-key checks on libssh2; blocking calls run on per-connection threads.
        .target(name: "SSHTransport",
                dependencies: ["CLibSSH2", "ProvisionBasics"],
                swiftSettings: strict),
        // One HTTP request at a time on libcurl's easy interface, off the cooperative pool; the only importer of CLibCurl.
        .target(name: "HTTPClient",
                dependencies: ["CLibCurl", "ProvisionBasics"],
                swiftSettings: strict),
        // GitLab's REST API v4: runners, CI/CD variables, cluster agents; retries, and errors that name the missing
        // scope or role. Knows nothing of SSH or the engine.
        .target(name: "GitLab",
                dependencies: ["HTTPClient", "ProvisionBasics", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The YAML inventory: model, loader with file:line:column diagnostics, ${env:NAME}.
        .target(name: "Inventory",
                dependencies: ["ProvisionBasics", "Yams"],
                swiftSettings: strict),
        // Facts: what a host is, gathered by one script and parsed from its output (pure).
        .target(name: "Facts",
                dependencies: ["ProvisionBasics"],
                swiftSettings: strict),
        // Every file written to a host: templates/*.mustache, rendered as plain text, overridable per inventory.
        .target(name: "Templates",
                dependencies: [.product(name: "Mustache", package: "swift-mustache")],
                path: "templates", exclude: ["README.md", "gitlab-ci"], resources: [.copy("host")],
                swiftSettings: strict),
        // The steps: each reads facts and its probe output and decides (pure); one file per step.
        .target(name: "Steps",
                dependencies: ["ProvisionBasics", "Inventory", "Facts", "Templates",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "TOMLKit", package: "TOMLKit")],
                swiftSettings: strict),
        // The journal (SQLite through GRDB, beside the inventory) and the one-apply-at-a-time lock.
        .target(name: "Journal",
                dependencies: ["ProvisionBasics", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: strict),
        // Runs work on inventory hosts: connections per host, parallelism, per-host failures.
        .target(name: "Engine",
                dependencies: ["ProvisionBasics", "SSHTransport", "Inventory", "Facts", "Journal", "Steps", "GitLab",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The command-line interface: thin commands, output formats, exit codes.
        .target(name: "ProvisionCommands",
                dependencies: ["Engine", "Inventory", "Facts", "SSHTransport", "ProvisionBasics", "Journal", "Templates", "Steps",
                               "GitLab", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // glibc's malloc.h, for the executable's arena setting.
        .systemLibrary(name: "CGlibcMalloc"),
        .executableTarget(name: "provision", dependencies: ["ProvisionCommands", "CGlibcMalloc"], swiftSettings: strict),

        // Test support: brings the lab (scripts/lab) up and down, finds the built binary.
        .target(name: "LabSupport", path: "Tests/LabSupport",
                swiftSettings: strict),
        .testTarget(name: "UnitTests",
                    dependencies: ["ProvisionBasics", "Inventory", "Facts", "SSHTransport", "Engine", "Journal",
                                   "Steps", "Templates", "HTTPClient", "GitLab",
                                   .product(name: "Logging", package: "swift-log"),
                                   .product(name: "TOMLKit", package: "TOMLKit")],
                    resources: [.copy("Fixtures")],
                    swiftSettings: strict),
        .testTarget(name: "LabTests",
                    dependencies: ["LabSupport", "ProvisionBasics", "SSHTransport", "Inventory", "Engine", "Facts", "Journal",
                                   "provision"],
                    swiftSettings: strict),
    ]
)
