import Foundation

/// How GitLab's JSON is read and written: ISO 8601 times with or without fractions, error bodies in their forms.
enum GitLabJSON {
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = date(text) { return date }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "\(text) is not an ISO 8601 time"))
        }
        return decoder
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }

    static func date(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    /// What an error body says: `{"message": "…"}`, `{"message": {"field": ["…"]}}`, `{"error": "…",
    /// "error_description": "…"}`, or plain text.
    static func errorBody(_ body: Data) -> (error: String?, text: String?) {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            let text = String(decoding: body.prefix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return (nil, text.isEmpty || text.hasPrefix("<") ? nil : text)
        }
        let error = object["error"] as? String
        var parts: [String] = []
        if let message = object["message"] { parts.append(flatten(message)) }
        if let description = object["error_description"] as? String {
            parts.append(description)
        } else if let error, object["message"] == nil {
            parts.append(error)
        }
        let text = parts.filter { !$0.isEmpty }.joined(separator: "; ")
        return (error, text.isEmpty ? nil : text)
    }

    /// A validation hash becomes "key is taken; value is invalid".
    private static func flatten(_ value: Any) -> String {
        switch value {
        case let text as String:
            return text
        case let list as [Any]:
            return list.map(flatten).joined(separator: ", ")
        case let fields as [String: Any]:
            return fields.keys.sorted().map { key in "\(key) \(flatten(fields[key]!))" }.joined(separator: "; ")
        default:
            return "\(value)"
        }
    }

    /// A decoding error in one line: what is wrong and at which key.
    static func summary(of error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the body" : keys.joined(separator: ".")
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?: return "\(key.stringValue) missing in \(path(context))"
        case .typeMismatch(_, let context)?: return "\(path(context)) has an unexpected type"
        case .valueNotFound(_, let context)?: return "\(path(context)) is null"
        case .dataCorrupted(let context)?: return "\(path(context)): \(context.debugDescription)"
        default: return "not JSON"
        }
    }
}
