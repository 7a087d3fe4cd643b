import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who holds an inventory's run lock, as written into the lock file for the next one to read.
public struct LockHolder: Sendable, Codable, Equatable {
    public var pid: Int32
    public var machine: String
    public var startedAt: Date
    public var command: String

    public init(pid: Int32, machine: String, startedAt: Date, command: String) {
        self.pid = pid
        self.machine = machine
        self.startedAt = startedAt
        self.command = command
    }
}

public enum RunLockError: Error, CustomStringConvertible {
    case held(LockHolder, path: String)
    case io(String)

    public var description: String {
        switch self {
        case .held(let holder, let path):
            // The command may be given as "apply …" or "provision apply …"; name it the same either way.
            var words = holder.command.split(separator: " ").map(String.init)
            if words.first == "provision" { words.removeFirst() }
            let command = words.joined(separator: " ")
            return "another provision \(words.first ?? "run") holds \(path): pid \(holder.pid) on \(holder.machine), "
                + "started \(Timestamp.utc(holder.startedAt)) (provision \(command)); wait for it or stop it"
        case .io(let message):
            return message
        }
    }
}

/// One holder per inventory at a time: an flock on the .lock file, which also holds the holder as JSON.
/// The kernel drops the flock when its process dies, however it dies, so a stale lock cannot block anyone.
public final class RunLock: Sendable {
    public let path: String
    public let holder: LockHolder
    /// The holder a previous process left in the file when it died without releasing.
    public let tookOverFrom: LockHolder?
    private let descriptor: Mutex<Int32?>

    private init(path: String, holder: LockHolder, tookOverFrom: LockHolder?, descriptor: Int32) {
        self.path = path
        self.holder = holder
        self.tookOverFrom = tookOverFrom
        self.descriptor = Mutex(descriptor)
    }

    /// Throws RunLockError.held naming pid, machine and start time when another live process holds the lock.
    public static func acquire(path: String, command: String) throws -> RunLock {
        let fd: Int32
        do { fd = try PrivateFiles.open(path, flags: O_RDWR) } catch { throw RunLockError.io("\(error)") }
        // The holder writes its JSON just after taking the flock and empties it just before letting go:
        // an empty file under a taken flock is one of those moments, so look again shortly.
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let failure = errno
            guard failure == EWOULDBLOCK else {
                close(fd)
                throw RunLockError.io("cannot lock \(path): \(message(failure))")
            }
            if let holder = try? decode(readAll(fd)) {
                close(fd)
                throw RunLockError.held(holder, path: path)
            }
            attempts += 1
            guard attempts < 40 else {
                close(fd)
                throw RunLockError.io("\(path) is locked by a process that does not say who it is; try again")
            }
            usleep(25_000)
        }
        // The flock was free, so whoever the file still names died without releasing it.
        let previous = try? decode(readAll(fd))
        // Whole seconds: the holder reads back from JSON exactly as written.
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let holder = LockHolder(pid: Machine.pid, machine: Machine.name, startedAt: now, command: command)
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try write(encoder.encode(holder) + Data("\n".utf8), to: fd)
        } catch {
            close(fd)
            throw RunLockError.io("cannot write \(path): \(error)")
        }
        return RunLock(path: path, holder: holder, tookOverFrom: previous, descriptor: fd)
    }

    /// Empties the file, so the next holder sees no one to take over from, then drops the flock.
    public func release() {
        descriptor.withLock { fd in
            guard let open = fd else { return }
            _ = ftruncate(open, 0)
            close(open)  // closing the last descriptor of the open file description drops the flock
            fd = nil
        }
    }

    deinit { release() }

    // MARK: The file

    private static func decode(_ data: Data) throws -> LockHolder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(LockHolder.self, from: data)
    }

    private static func readAll(_ fd: Int32) throws -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = pread(fd, &buffer, buffer.count, off_t(data.count))
            if count < 0 { throw RunLockError.io(message(errno)) }
            if count == 0 { return data }
            data.append(contentsOf: buffer[..<count])
        }
    }

    private static func write(_ data: Data, to fd: Int32) throws {
        guard ftruncate(fd, 0) == 0 else { throw RunLockError.io(message(errno)) }
        let written = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == data.count else { throw RunLockError.io(message(errno)) }
    }

    private static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}
