/// "Did you mean …?" for misspelt keys and values.
enum Suggestion {
    /// Words people bring from other tools, mapped to ours.
    private static let synonyms: [String: String] = [
        "host": "address", "hostname": "address", "ip": "address", "addr": "address",
        "username": "user", "login": "user",
        "key": "keyPath", "identityfile": "keyPath", "privatekey": "keyPath", "keyfile": "keyPath",
        "passphrase": "keyPassphrase", "pass": "password",
        "usesshagent": "agent", "useagent": "agent",
        "stricthostkeychecking": "hostKeyPolicy", "userknownhostsfile": "knownHosts",
        "fingerprint": "hostKeyFingerprint", "hostkey": "hostKeyFingerprint",
        "timeout": "connectTimeout", "serveraliveinterval": "keepalive",
        "master": "server", "controlplane": "server", "worker": "agent", "node": "agent",
        "nodes": "hosts", "servers": "hosts", "machines": "hosts",
        "protected": "ref_protected", "taglist": "tags",
    ]

    /// The candidate closest to `word`, or nil when none is close enough to be a likely typo.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let normalizedWord = normalized(word)
        if let synonym = synonyms[normalizedWord], candidates.contains(synonym) {
            return synonym
        }
        // Case, '_' and '-' differences alone (key_path, KeyPath) always count as close.
        if let same = candidates.first(where: { normalized($0) == normalizedWord }) {
            return same
        }
        let limit = switch normalizedWord.count {
        case ...4: 1
        case ...8: 2
        default: 3
        }
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(normalizedWord, normalized(candidate))
            if distance <= limit, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// "; did you mean 'x'?" or "".
    static func hint(for word: String, among candidates: [String]) -> String {
        closest(to: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    private static func normalized(_ word: String) -> String {
        String(word.lowercased().filter { $0 != "_" && $0 != "-" })
    }

    /// Levenshtein distance where swapping two neighbours counts as one edit (optimal string alignment).
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs), b = Array(rhs)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previousPrevious[j - 2] + 1)
                }
            }
            (previousPrevious, previous, current) = (previous, current, previousPrevious)
        }
        return previous[b.count]
    }
}
