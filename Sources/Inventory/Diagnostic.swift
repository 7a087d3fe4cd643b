/// A position in an inventory file; line and column count from 1, columns in Unicode scalars as libyaml does.
/// Line 0 means the problem concerns the file as a whole (it could not be read).
public struct SourceLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, or just `file` for a whole-file location.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }
}

/// One problem found in an inventory, pointing at the offending key or value.
public struct Diagnostic: Sendable, Error, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line:column: message`, the form editors and terminals turn into links.
    public var description: String { "\(location): \(message)" }
}

/// Everything wrong with an inventory, in file order; loading throws it only when there is at least one problem.
public struct InventoryError: Error, Equatable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics
    }

    /// One diagnostic per line.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}
