/// A value that must never be shown: it prints and reflects as `[REDACTED]`; `revealed` is for the one place that
/// sends it (a request body, a 0600 file, stdin), so every use of the clear text is easy to find.
public struct Secret: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible,
                      CustomReflectable {
    public let revealed: String

    public init(_ value: String) { revealed = value }

    public init(from decoder: any Decoder) throws {
        revealed = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(revealed)
    }

    public var isEmpty: Bool { revealed.isEmpty }
    public var description: String { Redactor.mask }
    public var debugDescription: String { Redactor.mask }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
