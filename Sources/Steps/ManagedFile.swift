import Crypto
import Foundation
import ProvisionBasics

/// A file whose whole content provision owns: compared by SHA-256, rewritten only when different.
public struct ManagedFile: Sendable, Equatable {
    public var path: String
    public var mode: Int
    public var owner: String

    public init(path: String, mode: Int = 0o644, owner: String = "root:root") {
        self.path = path
        self.mode = mode
        self.owner = owner
    }

    /// What the host has: content digest, mode and owner.
    public struct Remote: Sendable, Equatable {
        public var digest: String
        public var mode: Int
        public var owner: String

        public init(digest: String, mode: Int, owner: String) {
            self.digest = digest
            self.mode = mode
            self.owner = owner
        }
    }

    /// Prints `<sha256> <octal mode> <user:group>` of the file, or `absent`.
    public var probe: String {
        let q = ShellQuote.quote(path)
        return "if [ -f \(q) ]; then set -- $(stat -c '%a %U:%G' \(q)) $(sha256sum < \(q)); echo \"$3 $1 $2\"; else echo absent; fi"
    }

    /// Reads what `probe` printed: nil when the file is absent.
    public static func remote(_ probeOutput: String) throws -> Remote? {
        let line = probeOutput.split(separator: "\n").first.map(String.init) ?? ""
        if line == "absent" { return nil }
        let words = line.split(separator: " ").map(String.init)
        guard words.count == 3, words[0].count == 64, let mode = Int(words[1], radix: 8) else {
            throw StepError("unreadable file probe output: \(line)")
        }
        return Remote(digest: words[0], mode: mode, owner: words[2])
    }

    public static func digest(_ content: String) -> String {
        hex(SHA256.hash(data: Data(content.utf8)))
    }

    /// Lowercase hex, as sha256sum prints it.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes { out += [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]] }
        return String(decoding: out, as: UTF8.self)
    }

    /// ok when the host has exactly `content` with the right mode and owner, else what to fix (and why).
    public func decide(content: String, remote: Remote?) -> Decision {
        let wanted = Self.digest(content)
        guard let remote else {
            return .change(reason: "\(path) is missing", actions: [write(content)])
        }
        if remote.digest != wanted {
            return .change(reason: "\(path) differs from its template (sha256 \(remote.digest.prefix(12)) on the host, \(wanted.prefix(12)) wanted)",
                           actions: [write(content)])
        }
        if remote.mode != mode || remote.owner != owner {
            let q = ShellQuote.quote(path)
            return .change(reason: "\(path) has mode \(String(remote.mode, radix: 8)) \(remote.owner), wanted \(String(mode, radix: 8)) \(owner)",
                           actions: [.run("chmod \(String(mode, radix: 8)) \(q) && chown \(ShellQuote.quote(owner)) \(q)")])
        }
        return .ok("\(path) is up to date")
    }

    public func write(_ content: String) -> Action {
        .writeFile(path: path, content: content, mode: mode, owner: owner)
    }
}
