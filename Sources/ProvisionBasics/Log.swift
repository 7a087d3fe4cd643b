import Logging

/// A swift-log handler that writes redacted single lines to stderr: `provision: [host] message`.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let redactor: Redactor

    public init(level: Logger.Level, redactor: Redactor) {
        self.logLevel = level
        self.redactor = redactor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let host = merged.removeValue(forKey: "host").map { "\($0): " } ?? ""
        let level = event.level >= .warning ? "\(event.level): " : ""
        Console.error(redactor.redact("\(host)\(level)\(event.message)"))
    }
}

extension Logger {
    /// A logger that drops everything: the default for library code that is handed none.
    public static let silent = Logger(label: "provision.silent") { _ in SwiftLogNoOpLogHandler() }
}
