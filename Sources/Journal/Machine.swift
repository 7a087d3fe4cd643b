#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This process and the machine it runs on, as runs and locks record them.
enum Machine {
    /// gethostname rather than ProcessInfo.hostName, which may wait on DNS.
    static let name: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    static var pid: Int32 { getpid() }

    /// Only a process on this machine can be checked; one elsewhere is assumed alive.
    static func processIsGone(pid: Int32, machine: String) -> Bool {
        machine == name && kill(pid, 0) == -1 && errno == ESRCH
    }
}
