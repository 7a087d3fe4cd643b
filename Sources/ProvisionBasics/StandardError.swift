import Foundation
import Synchronization

/// Line-atomic writes to stderr and stdout (Swift 6 mode rejects the C globals).
public enum Console {
    private static let lock = Mutex(())

    public static func error(_ line: String) { write(line + "\n", to: FileHandle.standardError) }
    public static func out(_ text: String) { write(text, to: FileHandle.standardOutput) }
    /// Text as is (terminal control sequences, partial lines).
    public static func errorRaw(_ text: String) { write(text, to: FileHandle.standardError) }

    private static func write(_ text: String, to handle: FileHandle) {
        lock.withLock { _ in handle.write(Data(text.utf8)) }
    }

    public static var stderrIsTerminal: Bool { isatty(2) == 1 }
    public static var stdoutIsTerminal: Bool { isatty(1) == 1 }
}
