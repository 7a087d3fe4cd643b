import Synchronization

/// Replaces every known secret in text that is about to be logged, printed or stored. Copies share one list, so a
/// secret learnt during a run (a token read from a host) is masked everywhere the redactor was handed.
public struct Redactor: Sendable {
    public static let mask = "[REDACTED]"
    private final class Secrets: Sendable {
        let list: Mutex<[String]>
        init(_ list: [String]) { self.list = Mutex(list) }
    }
    private let secrets: Secrets

    public init(secrets: [String]) {
        self.secrets = Secrets(Self.ordered(secrets))
    }

    public static var none: Redactor { Redactor(secrets: []) }

    /// Longest first, so a secret that contains another is masked whole.
    private static func ordered(_ secrets: [String]) -> [String] {
        Array(Set(secrets.filter { !$0.isEmpty })).sorted { $0.count > $1.count }
    }

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets.list.withLock({ $0 }) where result.contains(secret) {
            result = result.replacing(secret, with: Self.mask)
        }
        return result
    }

    /// Masks `secret` from now on, in this redactor and every copy of it.
    public func learn(_ secret: String) {
        secrets.list.withLock { $0 = Self.ordered($0 + [secret]) }
    }

    /// A separate redactor that knows these secrets too.
    public func adding(_ more: [String]) -> Redactor { Redactor(secrets: secrets.list.withLock { $0 } + more) }
}
