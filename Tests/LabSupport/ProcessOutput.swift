import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs `executable` (a path, or a name looked up in PATH) to completion and returns its exit status and output.
/// stdout and stderr are drained at the same time, so a child that fills one pipe while we wait on the other cannot
/// deadlock. stdin comes from an unlinked temporary file rather than a pipe: a child that exits without reading it
/// cannot raise SIGPIPE in the test process. `stdinFile` instead streams an existing file (any bytes, any size) to
/// the child's stdin. A child killed by a signal reports 128 + the signal number.
public func run(_ executable: String, _ arguments: [String], stdin: String? = nil, stdinFile: String? = nil,
                environment: [String: String]? = nil) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try resolveExecutable(executable, environment: environment))
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    let input = try stdinFile.map { path in
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        return handle
    } ?? stdin.map(inputFile)
    defer { try? input?.close() }
    process.standardInput = input ?? FileHandle.nullDevice
    try process.run()

    let group = DispatchGroup()
    let errorData = DataBox()
    let errorHandle = errors.fileHandleForReading
    DispatchQueue.global().async(group: group) { errorData.value = errorHandle.readDataToEndOfFile() }
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus
                                                               : process.terminationStatus
    return ProcessOutput(status: status, stdout: String(decoding: outputData, as: UTF8.self),
                         stderr: String(decoding: errorData.value, as: UTF8.self))
}

/// Errors of the lab and of running its helpers.
public enum LabError: Error, CustomStringConvertible {
    case executableNotFound(String)
    case commandFailed(command: String, output: ProcessOutput)
    case malformed(path: String, line: String)

    public var description: String {
        switch self {
        case .executableNotFound(let name):
            return "\(name): not found in PATH"
        case .commandFailed(let command, let output):
            return "\(command) exited \(output.status): \(output.stderr.isEmpty ? output.stdout : output.stderr)"
        case .malformed(let path, let line):
            return "\(path): unexpected line '\(line)'"
        }
    }
}

/// A read handle on a file holding `text`; the file is already unlinked, so nothing is left behind.
private func inputFile(_ text: String) throws -> FileHandle {
    let path = NSTemporaryDirectory() + "lab-stdin-" + UUID().uuidString
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                         attributes: [.posixPermissions: 0o600]) else {
        throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
    }
    defer { try? FileManager.default.removeItem(atPath: path) }
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw CocoaError(.fileReadUnknown, userInfo: [NSFilePathErrorKey: path])
    }
    return handle
}

private func resolveExecutable(_ name: String, environment: [String: String]?) throws -> String {
    if name.contains("/") { return name }
    let path = (environment ?? ProcessInfo.processInfo.environment)["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
    for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw LabError.executableNotFound(name)
}

/// Holds the bytes read on another thread until the reader is joined.
private final class DataBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    var value: Data {
        get { lock.withLock { data } }
        set { lock.withLock { data = newValue } }
    }
}
