internal import CLibSSH2
import Foundation

/// What a private key file holds, read only as far as messages need.
enum KeyFile {
    static var libraryVersion: String {
        libssh2_version(0).map { "libssh2 " + String(cString: $0) } ?? "libssh2"
    }

    /// True for PEM RSA keys and OpenSSH-format keys whose public part is ssh-rsa.
    static func isRSA(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        if text.contains("BEGIN RSA PRIVATE KEY") { return true }
        guard text.contains("BEGIN OPENSSH PRIVATE KEY") else { return false }
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let data = Data(base64Encoded: body) else { return false }
        // The unencrypted header carries the public key, whose first string is its algorithm name.
        return data.prefix(200).range(of: Data("ssh-rsa".utf8)) != nil
    }
}
