#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The shapes of names, addresses, labels and versions; each check returns what is wrong, or nil.
enum InventorySyntax {
    // MARK: Host names

    /// Lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters:
    /// the name becomes the k3s node name.
    static func hostNameProblem(_ name: String) -> String? {
        let valid = name.count <= 63
            && name.unicodeScalars.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" || $0 == "." }
            && name.unicodeScalars.first.map(isLowerAlphanumeric) == true
            && name.unicodeScalars.last.map(isLowerAlphanumeric) == true
        return valid ? nil : "host name '\(name)' is invalid: use at most 63 lowercase letters, digits, '-' and '.', "
            + "starting and ending with a letter or digit"
    }

    // MARK: Addresses

    enum AddressKind { case ipv4, ipv6, hostname }

    struct Address {
        var kind: AddressKind
        /// The same address written one way (IPs in canonical form, host names in lowercase), to find duplicates.
        var canonical: String
    }

    static func address(_ text: String) -> Result<Address, SyntaxError> {
        func failure(_ message: String) -> Result<Address, SyntaxError> { .failure(SyntaxError(message: message)) }
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace }) {
            return failure("address '\(text)' must not contain spaces")
        }
        if let at = text.firstIndex(of: "@") {
            let (user, host) = (text[..<at], text[text.index(after: at)...])
            return failure("address '\(text)' must not include a user; write address: \(host) and ssh: {user: \(user)}")
        }
        if text.hasPrefix("[") {
            return failure("address '\(text)' must be written without brackets (and without a port)")
        }
        if text.contains(":") {
            if let canonical = canonicalIPv6(text) {
                return .success(Address(kind: .ipv6, canonical: canonical))
            }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2, !parts[1].isEmpty, parts[1].allSatisfy(\.isASCIIDigit) {
                return failure("address '\(text)' must not include a port; write address: \(parts[0]) "
                    + "and ssh: {port: \(parts[1])}")
            }
            return failure("address '\(text)' is not a valid IPv6 address")
        }
        if text.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            guard let canonical = canonicalIPv4(text) else {
                return failure("address '\(text)' is not a valid IPv4 address")
            }
            return .success(Address(kind: .ipv4, canonical: canonical))
        }
        let hostname = text.hasSuffix(".") ? String(text.dropLast()) : text
        let labels = hostname.split(separator: ".", omittingEmptySubsequences: false)
        let valid = hostname.count <= 253 && labels.allSatisfy { label in
            (1...63).contains(label.count)
                && label.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "-" }
                && label.first != "-" && label.last != "-"
        }
        guard valid else {
            return failure("address '\(text)' is not a valid IPv4 address, IPv6 address or host name")
        }
        return .success(Address(kind: .hostname, canonical: hostname.lowercased()))
    }

    private static func canonicalIPv4(_ text: String) -> String? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Accepts a zone (`fe80::1%eth0`), which is kept as written.
    private static func canonicalIPv6(_ text: String) -> String? {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        var address = in6_addr()
        guard inet_pton(AF_INET6, String(parts[0]), &address) == 1 else { return nil }
        if parts.count == 2, parts[1].isEmpty { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        let canonical = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return parts.count == 2 ? canonical + "%" + parts[1] : canonical
    }

    // MARK: Labels

    /// Kubernetes label keys: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
    static func labelKeyProblem(_ key: String) -> String? {
        let parts = key.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = parts.last ?? ""
        var valid = isLabelName(name) && !name.isEmpty
        if parts.count == 2 {
            let prefix = parts[0]
            valid = valid && !prefix.isEmpty && prefix.count <= 253
                && prefix.unicodeScalars.allSatisfy { isLowerAlphanumeric($0) || $0 == "-" || $0 == "." }
                && prefix.unicodeScalars.first.map(isLowerAlphanumeric) == true
                && prefix.unicodeScalars.last.map(isLowerAlphanumeric) == true
        }
        return valid ? nil : "label key '\(key)' is invalid: use an optional DNS prefix and '/', then at most 63 "
            + "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    }

    /// Kubernetes label values: empty, or like a label name.
    static func labelValueProblem(_ value: String, key: String) -> String? {
        isLabelName(Substring(value)) ? nil : "value '\(value)' of label '\(key)' is invalid: use at most 63 letters, "
            + "digits, '-', '_' and '.', starting and ending with a letter or digit"
    }

    private static func isLabelName(_ name: Substring) -> Bool {
        if name.isEmpty { return true }
        return name.count <= 63
            && name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
            && name.unicodeScalars.first.map(isAlphanumeric) == true
            && name.unicodeScalars.last.map(isAlphanumeric) == true
    }

    // MARK: k3s and host keys

    /// `v1.31.4+k3s1`, or a release candidate such as `v1.32.0-rc1+k3s1`.
    static func k3sVersionProblem(_ version: String) -> String? {
        let problem = "k3s version must look like 'v1.31.4+k3s1', got '\(version)'"
        guard version.hasPrefix("v") else { return problem }
        let parts = version.dropFirst().split(separator: "+", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("k3s"), isNumber(parts[1].dropFirst(3)) else { return problem }
        var release = parts[0]
        if let dash = release.firstIndex(of: "-") {
            let suffix = release[release.index(after: dash)...]
            guard suffix.hasPrefix("rc"), isNumber(suffix.dropFirst(2)) else { return problem }
            release = release[..<dash]
        }
        let numbers = release.split(separator: ".", omittingEmptySubsequences: false)
        return numbers.count == 3 && numbers.allSatisfy(isNumber) ? nil : problem
    }

    /// A Kubernetes node name; the same rule as host names, which are the default node names.
    static func nodeNameProblem(_ name: String) -> String? {
        hostNameProblem(name) == nil ? nil : "nodeName '\(name)' is invalid: use at most 63 lowercase letters, "
            + "digits, '-' and '.', starting and ending with a letter or digit"
    }

    static let taintEffects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

    /// A Kubernetes taint, `key[=value]:Effect`, as `kubectl taint` takes it.
    static func taintProblem(_ taint: String) -> String? {
        guard let colon = taint.lastIndex(of: ":") else {
            return "taint '\(taint)' must be key[=value]:Effect, such as 'dedicated=ci:NoSchedule'"
        }
        let effect = String(taint[taint.index(after: colon)...])
        guard taintEffects.contains(effect) else {
            return "taint '\(taint)' has the effect '\(effect)'; expected \(InventoryReader.alternatives(taintEffects))"
                + Suggestion.hint(for: effect, among: taintEffects)
        }
        let keyValue = taint[..<colon]
        let parts = keyValue.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = String(parts[0])
        if key.isEmpty || labelKeyProblem(key) != nil {
            return "taint '\(taint)' has an invalid key '\(key)': use an optional DNS prefix and '/', then at most 63 "
                + "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        }
        if parts.count == 2, !isLabelName(parts[1]) {
            return "taint '\(taint)' has an invalid value '\(parts[1])': use at most 63 letters, digits, '-', '_' "
                + "and '.', starting and ending with a letter or digit"
        }
        return nil
    }

    /// What makes two taints the same to Kubernetes: the key and the effect.
    static func taintIdentity(_ taint: String) -> String {
        let colon = taint.lastIndex(of: ":") ?? taint.endIndex
        let key = taint[..<colon].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return String(key + taint[colon...])
    }

    /// An IP address or a DNS name, possibly a wildcard (`*.lab.example`), for the API server's certificate.
    static func isSubjectAltName(_ name: String) -> Bool {
        let bare = name.hasPrefix("*.") ? String(name.dropFirst(2)) : name
        return (try? address(bare).get()) != nil && !(name.hasPrefix("*.") && bare.contains(":"))
    }

    /// A Unix file mode as 3 or 4 octal digits, written as a string so that YAML keeps the leading 0.
    static func fileModeProblem(_ mode: String) -> String? {
        (3...4).contains(mode.count) && mode.allSatisfy({ ("0"..."7").contains($0) }) ? nil
            : "writeKubeconfigMode must be 3 or 4 octal digits such as \"0644\", got '\(mode)'"
    }

    /// The install script's address: https:// or http://, then a host.
    static func installScriptURLProblem(_ url: String) -> String? {
        urlProblem(url, key: "installScriptURL", example: "https://get.k3s.io")
    }

    /// https:// or http://, then a host, and nothing a shell, an apt source or a TOML string would split on.
    static func urlProblem(_ url: String, key: String, example: String) -> String? {
        let rest = url.hasPrefix("https://") ? url.dropFirst(8) : url.hasPrefix("http://") ? url.dropFirst(7) : nil
        guard let rest, let host = rest.split(separator: "/", omittingEmptySubsequences: false).first, !host.isEmpty,
              !url.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0 == "\"" || $0 == "\\" }) else {
            return "\(key) must be an https:// or http:// URL such as '\(example)', got '\(url)'"
        }
        return nil
    }

    // MARK: Packages

    /// A Debian package version, `[epoch:]upstream[-revision]`, such as `5:27.5.1-1~debian.12~bookworm`.
    static func aptVersionProblem(_ version: String) -> String? {
        let upstream = version.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).last ?? ""
        let epoch = version.contains(":") ? version.prefix { $0 != ":" } : "0"
        let valid = upstream.first?.isASCIIDigit == true && isNumber(epoch)
            && upstream.unicodeScalars.allSatisfy { isAlphanumeric($0) || ".+~-".unicodeScalars.contains($0) }
        return valid ? nil : "docker version must be an apt version as `apt-cache policy` lists it, such as "
            + "'5:27.5.1-1~debian.12~bookworm' or '20.10.24+dfsg1-1+deb12u1', got '\(version)'"
    }

    /// A gitlab-runner release, `17.7.1`: the package version is that plus `-1`.
    static func runnerVersionProblem(_ version: String) -> String? {
        let numbers = version.split(separator: ".", omittingEmptySubsequences: false)
        if numbers.count == 3, numbers.allSatisfy(isNumber) { return nil }
        let hint = version.hasPrefix("v") ? " (without the 'v')"
            : version.hasSuffix("-1") ? " (the release, without the package's '-1')" : ""
        return "runnerPackage version must be a gitlab-runner release such as '17.7.1'\(hint), got '\(version)'"
    }

    // MARK: Runners

    /// Letters, digits, '-', '_' and '.', at most 50: it names the runner in GitLab and in config.toml.
    static func runnerNameProblem(_ name: String) -> String? {
        let valid = name.count <= 50 && name.unicodeScalars.first.map(isAlphanumeric) == true
            && name.unicodeScalars.allSatisfy { isAlphanumeric($0) || "-_.".unicodeScalars.contains($0) }
        return valid ? nil : "runner name '\(name)' is invalid: use at most 50 letters, digits, '-', '_' and '.', "
            + "starting with a letter or digit"
    }

    /// GitLab takes tags as a comma-separated list and trims them.
    static func tagProblem(_ tag: String) -> String? {
        if tag.contains(",") { return "tag '\(tag)' must not contain ','; list each tag separately" }
        if tag.first?.isWhitespace == true || tag.last?.isWhitespace == true {
            return "tag '\(tag)' must not start or end with a space"
        }
        return nil
    }

    /// `SHA256:` and the 43 characters of an unpadded base64 SHA-256 digest, as `ssh-keygen -lf` prints it.
    static func fingerprintProblem(_ fingerprint: String) -> String? {
        let digest = fingerprint.hasPrefix("SHA256:") ? fingerprint.dropFirst(7) : ""
        let valid = digest.count == 43 && digest.unicodeScalars.allSatisfy {
            isAlphanumeric($0) || $0 == "+" || $0 == "/"
        }
        return valid ? nil : "hostKeyFingerprint must be 'SHA256:' followed by 43 base64 characters without '=' "
            + "padding, as 'ssh-keygen -lf' prints it; got '\(fingerprint)'"
    }

    // MARK: Characters

    private static func isNumber(_ text: Substring) -> Bool {
        !text.isEmpty && text.allSatisfy(\.isASCIIDigit)
    }

    private static func isLowerAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        isLowerAlphanumeric(scalar) || ("A"..."Z").contains(scalar)
    }

    struct SyntaxError: Error {
        var message: String
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
