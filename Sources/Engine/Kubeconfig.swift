import Foundation
import Inventory
import ProvisionBasics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A kubeconfig read where it cannot be used or written.
public struct KubeconfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The cluster's admin kubeconfig: k3s writes it on the first server for use there (server https://127.0.0.1:6443);
/// pointed at the server's address it works from anywhere. It holds the admin client key: it is never logged, and
/// only written to files that are 0600 from their first byte.
public enum Kubeconfig {
    public static let path = "/etc/rancher/k3s/k3s.yaml"
    static let missing: Int32 = 3

    /// The file as k3s wrote it, read as root over the host's pooled connection.
    public static func read(from host: InventoryHost, pool: ConnectionPool, inventoryPath: String) async throws -> String {
        let connection = try await pool.connection(for: host)
        let quoted = ShellQuote.quote(path)
        // The -v log shows this command line, never its output.
        let result = try await connection.run("[ -f \(quoted) ] || exit \(missing); cat \(quoted)", privileged: true,
                                              timeout: 60)
        if result.exitStatus == missing {
            throw KubeconfigError("\(host.name): k3s is not installed on the first server (no \(path)); run "
                + "provision apply \(inventoryPath) first")
        }
        guard result.succeeded else {
            let last = result.stderrText.split(separator: "\n").last.map(String.init) ?? ""
            throw KubeconfigError("\(host.name): reading \(path) failed (\(result.statusDescription)): \(last)")
        }
        return result.stdoutText
    }

    /// `server:` lines pointing at this machine (https://127.0.0.1, localhost or [::1]) made to point at `address`,
    /// port kept; an IPv6 address is bracketed. Returns the text and how many lines changed.
    public static func pointing(_ text: String, at address: String) -> (text: String, rewritten: Int) {
        let host = address.contains(":") && !address.hasPrefix("[") ? "[\(address)]" : address
        var rewritten = 0
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard let changed = rewrite(line, host: host) else { return String(line) }
            rewritten += 1
            return changed
        }
        return (lines.joined(separator: "\n"), rewritten)
    }

    private static func rewrite(_ line: Substring, host: String) -> String? {
        let indent = line.prefix { $0 == " " || $0 == "\t" }
        let rest = line.dropFirst(indent.count)
        guard rest.hasPrefix("server:") else { return nil }
        var value = rest.dropFirst("server:".count).trimmingCharacters(in: .whitespaces)
        var quote = ""
        if let first = value.first, first == "\"" || first == "'", value.count >= 2, value.last == first {
            quote = String(first)
            value = String(value.dropFirst().dropLast())
        }
        for local in ["127.0.0.1", "localhost", "[::1]"] {
            let prefix = "https://" + local
            guard value.hasPrefix(prefix) else { continue }
            let port = value.dropFirst(prefix.count)
            guard port.isEmpty || port.first == ":" && port.count > 1 && port.dropFirst().allSatisfy(\.isASCII)
                    && port.dropFirst().allSatisfy(\.isNumber) else { continue }
            return "\(indent)server: \(quote)https://\(host)\(port)\(quote)"
        }
        return nil
    }

    /// Writes `text` to `file` so that it is 0600 from the start and readers see the old file or the whole new one:
    /// a temporary file in the same folder, created 0600, synced, then renamed over `file`.
    public static func write(_ text: String, to file: String) throws {
        let url = URL(fileURLWithPath: file)
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".provision-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw KubeconfigError("cannot write \(file): \(String(cString: strerror(errno)))") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            // The umask can only have taken bits away; make it exactly owner read/write.
            guard fchmod(fd, 0o600) == 0 else { throw KubeconfigError(String(cString: strerror(errno))) }
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
            try handle.close()
            guard rename(temporary, file) == 0 else { throw KubeconfigError(String(cString: strerror(errno))) }
        } catch {
            unlink(temporary)
            throw KubeconfigError("cannot write \(file): \(error)")
        }
    }
}
