import Yams

/// A line and column as libyaml counts them: lines break at LF, CRLF, CR, NEL, LS and PS; columns count scalars.
struct TextPosition: Hashable {
    var line: Int
    var column: Int

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: Mark) {
        self.init(line: mark.line, column: mark.column)
    }
}

/// A YAML text composed into nodes, plus what it took to get past duplicate keys.
struct ComposedDocument {
    var root: Node?
    /// Keys that were renamed so that Yams would compose the rest of the document, by position: the original key.
    var renamedKeys: [TextPosition: String]
}

/// Composes YAML with Yams and turns its errors into diagnostics.
///
/// Yams stops at the first mapping with a duplicate key and reports only where the first occurrence is. To go on and
/// report every problem, we rename that occurrence in the text, keeping every position, and compose again; the reader
/// then reports each later occurrence as a duplicate of the renamed one.
enum YAMLComposer {
    static func compose(_ text: String, file: String) -> Result<ComposedDocument, Diagnostic> {
        var text = text
        var renamedKeys: [TextPosition: String] = [:]
        var nextReplacement: UInt32 = 0xE000
        while true {
            do {
                let root = try Yams.compose(yaml: text, .default, .default, .utf8)
                return .success(ComposedDocument(root: root, renamedKeys: renamedKeys))
            } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
                // Yams lists the duplicated keys in order; the mark is the first occurrence of the first of them.
                let position = TextPosition(context.mark)
                let replacement = (nextReplacement..<0xF900).lazy.compactMap(Unicode.Scalar.init)
                    .first { !text.unicodeScalars.contains($0) }
                guard renamedKeys[position] == nil, let key = duplicates.first, let replacement,
                      let renamed = replacingKeyStart(in: text, at: position, with: replacement) else {
                    let name = duplicates.first.map { " '\($0)'" } ?? ""
                    return .failure(Diagnostic(location: location(position, file: file),
                                               message: "duplicate key\(name) in this mapping"))
                }
                nextReplacement = replacement.value + 1
                renamedKeys[position] = key
                text = renamed
            } catch {
                if let diagnostic = diagnostic(for: error, text: text, file: file) {
                    let position = TextPosition(line: diagnostic.location.line, column: diagnostic.location.column)
                    if let key = renamedKeys[position] {
                        // Our renaming upset the parser after all: report the duplicate as Yams did.
                        return .failure(Diagnostic(location: diagnostic.location,
                                                   message: "duplicate key '\(key)' in this mapping"))
                    }
                    return .failure(diagnostic)
                }
                return .failure(Diagnostic(location: location(TextPosition(line: 1, column: 1), file: file),
                                           message: "invalid YAML: \(error)"))
            }
        }
    }

    static func location(_ position: TextPosition, file: String) -> SourceLocation {
        SourceLocation(file: file, line: position.line, column: position.column)
    }

    // MARK: Renaming a duplicate key

    /// Replaces the first character of the key that starts at `position` (after any anchor, tag or opening quote),
    /// or returns nil where that would change the document's structure.
    static func replacingKeyStart(in text: String, at position: TextPosition,
                                  with replacement: Unicode.Scalar) -> String? {
        var scalars = Array(text.unicodeScalars)
        guard var index = scalarIndex(of: position, in: scalars) else { return nil }
        // Skip `&anchor` and `!tag` properties.
        while index < scalars.count, scalars[index] == "&" || scalars[index] == "!" {
            while index < scalars.count, scalars[index] != " " && scalars[index] != "\t" { index += 1 }
            while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
        }
        guard index < scalars.count else { return nil }
        if scalars[index] == "\"" || scalars[index] == "'" {
            let quote = scalars[index]
            index += 1
            guard index < scalars.count, scalars[index] != quote, scalars[index] != "\\" else { return nil }
        }
        let structural: Set<Unicode.Scalar> = ["*", "[", "]", "{", "}", "?", "|", ">", ",", "#", ":", "\"", "'",
                                                " ", "\t", "\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"]
        guard !structural.contains(scalars[index]) else { return nil }
        scalars[index] = replacement
        var result = String.UnicodeScalarView()
        result.append(contentsOf: scalars)
        return String(result)
    }

    /// The index in `scalars` of a line and column.
    static func scalarIndex(of position: TextPosition, in scalars: [Unicode.Scalar]) -> Int? {
        let end = walk(scalars) { _, line, column in !(line == position.line && column == position.column) }
        return end.line == position.line && end.column == position.column ? end.index : nil
    }

    /// The line and column of the scalar at `offset`.
    static func position(ofScalarOffset offset: Int, in scalars: [Unicode.Scalar]) -> TextPosition {
        let end = walk(scalars) { index, _, _ in index < offset }
        return TextPosition(line: end.line, column: end.column)
    }

    /// Steps through `scalars` counting lines as YAML does (CRLF is one break) while `proceed` says so.
    private static func walk(_ scalars: [Unicode.Scalar],
                             while proceed: (Int, Int, Int) -> Bool) -> (index: Int, line: Int, column: Int) {
        var line = 1, column = 1, index = 0
        while index < scalars.count, proceed(index, line, column) {
            let scalar = scalars[index]
            if scalar == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" {
                index += 2
                (line, column) = (line + 1, 1)
            } else if ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"].contains(scalar) {
                index += 1
                (line, column) = (line + 1, 1)
            } else {
                index += 1
                column += 1
            }
        }
        return (index, line, column)
    }

    // MARK: Yams errors

    /// What Yams' error means, at its position; nil for errors that carry no position.
    static func diagnostic(for error: Error, text: String, file: String) -> Diagnostic? {
        guard let error = error as? YamlError else { return nil }
        switch error {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _):
            return Diagnostic(location: location(TextPosition(mark), file: file),
                              message: syntaxMessage(problem: problem, context: context, at: mark, text: text))
        case let .composer(context, problem, mark, _):
            if context?.text == "expected a single document in the stream" {
                return Diagnostic(location: location(TextPosition(mark), file: file),
                                  message: "the inventory must be a single YAML document, but a second one starts here")
            }
            return Diagnostic(location: location(TextPosition(mark), file: file),
                              message: syntaxMessage(problem: problem, context: context, at: mark, text: text))
        case let .reader(problem, offset, _, yaml):
            // Yams gives the offset in Characters of the text.
            let characters = offset.map { min($0, yaml.count) } ?? 0
            let scalarOffset = yaml.unicodeScalars.distance(
                from: yaml.startIndex, to: yaml.index(yaml.startIndex, offsetBy: characters))
            let position = position(ofScalarOffset: scalarOffset, in: Array(yaml.unicodeScalars))
            return Diagnostic(location: location(position, file: file), message: "invalid YAML: \(problem)")
        default:
            return nil
        }
    }

    private static func syntaxMessage(problem: String, context: YamlError.Context?, at mark: Mark,
                                      text: String) -> String {
        var message = "invalid YAML: \(problem)"
        let scalars = Array(text.unicodeScalars)
        let offending = scalarIndex(of: TextPosition(mark), in: scalars)
            .flatMap { $0 < scalars.count ? scalars[$0] : nil }
        if problem.contains("tab") || offending == "\t" {
            // libyaml's context ("while scanning a plain scalar") does not help here.
            return message + "; indent with spaces, YAML does not allow tabs there"
        }
        if let context {
            if context.mark.line == mark.line, context.mark.column == mark.column {
                message += " (\(context.text))"
            } else {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
        }
        if context?.text.contains("flow mapping") == true {
            message += "; is a closing '}' missing?"
        } else if context?.text.contains("flow sequence") == true {
            message += "; is a closing ']' missing?"
        }
        return message
    }
}
