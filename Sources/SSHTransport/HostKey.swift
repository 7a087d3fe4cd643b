internal import CLibSSH2
import Foundation
import Synchronization

/// The key a server offered, and the three ways of deciding whether to trust it.
struct OfferedHostKey {
    let blob: Data
    let libssh2Type: Int32
    /// `SHA256:<base64 without padding>`, as OpenSSH prints it.
    let fingerprint: String

    /// The algorithm name stored at the start of the key blob (e.g. "ssh-ed25519").
    var algorithm: String {
        guard blob.count >= 4 else { return "unknown" }
        let bytes = [UInt8](blob)
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, 4 + length <= bytes.count else { return "unknown" }
        return String(decoding: bytes[4..<(4 + length)], as: UTF8.self)
    }

    var knownHostKeyBits: Int32 {
        switch libssh2Type {
        case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA
        case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384
        case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521
        case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519
        default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN
        }
    }

    static func fingerprint(sha256 digest: Data) -> String {
        "SHA256:" + digest.base64EncodedString().replacing("=", with: "")
    }
}

/// known_hosts checks: libssh2 matches (plain and hashed entries); appending is ours, one line at a time.
enum KnownHosts {
    enum Verdict { case match, mismatch, notFound }

    private static let appendLock = Mutex(())

    /// OpenSSH's host pattern: `addr` on port 22, `[addr]:port` otherwise.
    static func hostPattern(address: String, port: Int) -> String {
        port == 22 ? address : "[\(address)]:\(port)"
    }

    static func check(session: OpaquePointer, path: String, address: String, port: Int,
                      key: OfferedHostKey) throws -> Verdict {
        guard let store = libssh2_knownhost_init(session) else {
            throw SSHError(.protocolError, "cannot initialise known_hosts handling")
        }
        defer { libssh2_knownhost_free(store) }
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            // Line by line: one entry libssh2 cannot parse (certificates, sk keys) must not hide the rest.
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") || trimmed.hasPrefix("@") { continue }
                _ = libssh2_knownhost_readline(store, trimmed, trimmed.utf8.count, LIBSSH2_KNOWNHOST_FILE_OPENSSH)
            }
        }
        let typeMask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key.knownHostKeyBits
        let result = key.blob.withUnsafeBytes { raw in
            libssh2_knownhost_checkp(store, address, Int32(port),
                                     raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count,
                                     typeMask, nil)
        }
        switch result {
        case LIBSSH2_KNOWNHOST_CHECK_MATCH: return .match
        case LIBSSH2_KNOWNHOST_CHECK_MISMATCH: return .mismatch
        default: return .notFound
        }
    }

    /// Appends one entry, creating the file (and its folder) when missing.
    static func append(path: String, address: String, port: Int, key: OfferedHostKey) throws {
        let line = "\(hostPattern(address: address, port: port)) \(key.algorithm) \(key.blob.base64EncodedString())\n"
        try appendLock.withLock { _ in
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            }
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw SSHError(.hostKeyUnknown, "cannot record host key in \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            var text = line
            // Keep entries on their own lines even when the file lacks a final newline.
            var last: UInt8 = 0
            if lseek(fd, -1, SEEK_END) >= 0, pread(fd, &last, 1, lseek(fd, 0, SEEK_END) - 1) == 1, last != 10 {
                text = "\n" + text
            }
            let written = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
            guard written == text.utf8.count else {
                throw SSHError(.hostKeyUnknown, "cannot record host key in \(path): short write")
            }
        }
    }
}
