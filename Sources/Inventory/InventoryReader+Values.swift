import Yams

/// One key of a mapping, with where it was written.
struct Entry {
    var key: String
    var keyLocation: SourceLocation
    var value: Node
}

/// The keys of one mapping that the reader accepted, in file order.
struct Fields {
    var location: SourceLocation
    var entries: [Entry]

    subscript(key: String) -> Entry? {
        entries.first { $0.key == key }
    }
}

// Reading mappings and typed scalars; every problem becomes a diagnostic and the value nil.
extension InventoryReader {
    mutating func error(_ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(location: location, message: message))
    }

    func location(of node: Node, or fallback: SourceLocation? = nil) -> SourceLocation {
        guard let mark = node.mark else {
            return fallback ?? SourceLocation(file: file, line: 1, column: 1)
        }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    /// Where to point for a problem with an entry's value: the value, or the key when the value is empty.
    func valueLocation(_ entry: Entry) -> SourceLocation {
        isNull(entry.value) ? entry.keyLocation : location(of: entry.value, or: entry.keyLocation)
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.tag.rawValue == Tag.Name.null.rawValue
    }

    /// How a value looks to the user, for "got …" in messages.
    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): isNull(node) ? "nothing" : "'\(Self.shortened(scalar.string))'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// "line 4", or "line 4, column 9" when `location` is on the same line as `here`.
    static func reference(to location: SourceLocation, from here: SourceLocation) -> String {
        location.line == here.line ? "line \(location.line), column \(location.column)" : "line \(location.line)"
    }

    static func shortened(_ text: String) -> String {
        text.count > 60 ? text.prefix(57) + "..." : text
    }

    // MARK: Mappings

    /// The entries of a mapping. Reports a value that is not a mapping, keys that are not names, duplicate keys and
    /// keys outside `allowed` (any key when nil); `context` ends messages, as in "unknown key 'x' in host".
    mutating func fields(of node: Node, named name: String, allowed: [String]?, context: String,
                         fallback: SourceLocation? = nil, ignoringExtensions: Bool = false) -> Fields? {
        guard case .mapping(let mapping) = node else {
            error("\(name) must be a mapping, got \(describe(node))", at: location(of: node, or: fallback))
            return nil
        }
        var fields = Fields(location: location(of: node, or: fallback), entries: [])
        var seen: [String: SourceLocation] = [:]
        for (keyNode, value) in mapping {
            let keyLocation = location(of: keyNode, or: fields.location)
            guard case .scalar(let scalar) = keyNode else {
                error("keys must be names, got \(describe(keyNode)) \(context)", at: keyLocation)
                continue
            }
            let key = renamedKeys[TextPosition(line: keyLocation.line, column: keyLocation.column)] ?? scalar.string
            if let first = seen[key] {
                error("duplicate key '\(key)' \(context); first at \(Self.reference(to: first, from: keyLocation))",
                      at: keyLocation)
                continue
            }
            seen[key] = keyLocation
            if let allowed, !allowed.contains(key) {
                if ignoringExtensions, key.hasPrefix("x-") { continue }
                if key == "<<" {
                    error("merge keys ('<<') are not supported; put shared ssh settings in the top-level ssh block",
                          at: keyLocation)
                } else {
                    error("unknown key '\(key)' \(context)" + Suggestion.hint(for: key, among: allowed),
                          at: keyLocation)
                }
                continue
            }
            fields.entries.append(Entry(key: key, keyLocation: keyLocation, value: value))
        }
        return fields
    }

    /// Reports each of `keys` that `fields` lacks, at the mapping; `owner` starts the message ("host", "k3s").
    mutating func require(_ keys: [String], in fields: Fields, owner: String) {
        for key in keys where fields[key] == nil {
            error("\(owner) is missing required key '\(key)'", at: fields.location)
        }
    }

    // MARK: Scalars

    /// A scalar value's text with `${env:NAME}` expanded, and the text as written.
    mutating func scalarText(_ node: Node, named name: String, expected: String,
                             at fallback: SourceLocation) -> (text: String, written: String)? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            let at = isNull(node) ? fallback : location(of: node, or: fallback)
            error("\(name) must be \(expected), got \(describe(node))", at: at)
            return nil
        }
        let expansion = EnvironmentExpansion.expand(scalar.string, environment: environment)
        for problem in expansion.problems {
            error(problem + " (in \(name))", at: location(of: node, or: fallback))
        }
        return expansion.value.map { ($0, scalar.string) }
    }

    /// "got 'abc'", naming the written text too when it came from the environment.
    private func got(_ value: (text: String, written: String)) -> String {
        let shown = "got '\(Self.shortened(value.text))'"
        return value.text == value.written ? shown : shown + " (from '\(Self.shortened(value.written))')"
    }

    /// A non-empty string. Messages never show a secret's value.
    mutating func string(_ entry: Entry, secret: Bool = false) -> String? {
        guard let value = scalarText(entry.value, named: entry.key, expected: "a string", at: entry.keyLocation)
        else { return nil }
        guard !value.text.isEmpty else {
            let origin = value.written.isEmpty ? "" : " (it expands to nothing)"
            error("\(entry.key) must not be empty" + origin, at: valueLocation(entry))
            return nil
        }
        if secret, !secrets.contains(value.text) { secrets.append(value.text) }
        return value.text
    }

    /// A decimal integer within `range`.
    mutating func integer(_ entry: Entry, in range: ClosedRange<Int>) -> Int? {
        guard let value = scalarText(entry.value, named: entry.key, expected: "an integer", at: entry.keyLocation)
        else { return nil }
        guard let number = Int(value.text.trimmingSpaces) else {
            error("\(entry.key) must be an integer, \(got(value))", at: valueLocation(entry))
            return nil
        }
        guard range.contains(number) else {
            let bounds = range.upperBound == Int.max ? "\(range.lowerBound) or more"
                : "between \(range.lowerBound) and \(range.upperBound)"
            error("\(entry.key) must be \(bounds), got \(number)", at: valueLocation(entry))
            return nil
        }
        return number
    }

    /// A number of seconds, more than zero.
    mutating func seconds(_ entry: Entry) -> Double? {
        guard let value = scalarText(entry.value, named: entry.key, expected: "a number of seconds",
                                     at: entry.keyLocation) else { return nil }
        guard let number = Double(value.text.trimmingSpaces), number.isFinite else {
            error("\(entry.key) must be a number of seconds, \(got(value))", at: valueLocation(entry))
            return nil
        }
        guard number > 0 else {
            error("\(entry.key) must be more than 0 seconds, \(got(value))", at: valueLocation(entry))
            return nil
        }
        return number
    }

    /// true or false (YAML's yes/no and on/off too).
    mutating func boolean(_ entry: Entry) -> Bool? {
        guard let value = scalarText(entry.value, named: entry.key, expected: "true or false", at: entry.keyLocation)
        else { return nil }
        switch value.text.trimmingSpaces.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error("\(entry.key) must be true or false, \(got(value))", at: valueLocation(entry))
            return nil
        }
    }

    /// One of a fixed set of words.
    mutating func choice<Choice: RawRepresentable & CaseIterable>(_ entry: Entry, of type: Choice.Type) -> Choice?
    where Choice.RawValue == String {
        guard let text = string(entry) else { return nil }
        if let choice = Choice(rawValue: text) { return choice }
        let names = Choice.allCases.map(\.rawValue)
        error("\(entry.key) must be \(Self.alternatives(names)), got '\(Self.shortened(text))'"
              + Suggestion.hint(for: text, among: names), at: valueLocation(entry))
        return nil
    }

    /// An absolute path: `~` is $HOME, a relative path is relative to the inventory's folder.
    mutating func path(_ entry: Entry) -> String? {
        guard let text = string(entry) else { return nil }
        switch InventoryPaths.resolve(text, home: home, baseDirectory: baseDirectory) {
        case .success(let path): return path
        case .failure(let problem):
            error("\(entry.key) '\(Self.shortened(text))': \(problem.message)", at: valueLocation(entry))
            return nil
        }
    }

    /// "'a', 'b' or 'c'".
    static func alternatives(_ names: [String]) -> String {
        let quoted = names.map { "'\($0)'" }
        guard quoted.count > 1 else { return quoted.first ?? "" }
        return quoted.dropLast().joined(separator: ", ") + " or " + quoted[quoted.count - 1]
    }
}

private extension String {
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[first...last]
    }
}
