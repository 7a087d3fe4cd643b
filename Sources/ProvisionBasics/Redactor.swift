/// Replaces every known secret in text that is about to be logged, printed or stored.
public struct Redactor: Sendable {
    public static let mask = "[REDACTED]"
    private let secrets: [String]

    public init(secrets: [String]) {
        // Longest first, so a secret that contains another is masked whole.
        self.secrets = Array(Set(secrets.filter { !$0.isEmpty })).sorted { $0.count > $1.count }
    }

    public static let none = Redactor(secrets: [])

    public func redact(_ text: String) -> String {
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacing(secret, with: Self.mask)
        }
        return result
    }

    public func adding(_ more: [String]) -> Redactor { Redactor(secrets: secrets + more) }
}
