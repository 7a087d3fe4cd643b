import Foundation

/// Reads an inventory file into an `Inventory`, or throws an `InventoryError` listing every problem.
public enum InventoryLoader {
    /// Reads and parses the file at `path`. Diagnostics name the file as `path` is written; `Inventory.path` is
    /// absolute. A file that cannot be read gives one diagnostic without line and column.
    public static func load(path: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Inventory {
        func failure(_ message: String) -> InventoryError {
            InventoryError(diagnostics: [Diagnostic(location: SourceLocation(file: path, line: 0, column: 0),
                                                    message: message)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw failure("cannot read the inventory: no such file")
        }
        guard !isDirectory.boolValue else {
            throw failure("cannot read the inventory: it is a directory, not a YAML file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw failure("cannot read the inventory: permission denied or I/O error")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw failure("cannot read the inventory: it is not UTF-8 text")
        }
        return try parse(yaml: text, path: path, environment: environment)
    }

    /// Parses inventory text as if read from `path`, which names the file in diagnostics and anchors relative
    /// paths (a relative `path` is taken from the current directory).
    public static func parse(yaml: String, path: String, environment: [String: String]) throws -> Inventory {
        let absolutePath = InventoryPaths.normalized(
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path)
        // libyaml skips a byte order mark without counting it as a column; drop it so positions agree.
        var text = yaml
        if text.unicodeScalars.first == "\u{FEFF}" {
            text.unicodeScalars.removeFirst()
        }
        let document: ComposedDocument
        switch YAMLComposer.compose(text, file: path) {
        case .success(let composed): document = composed
        case .failure(let diagnostic): throw InventoryError(diagnostics: [diagnostic])
        }
        var reader = InventoryReader(file: path, baseDirectory: InventoryPaths.directory(of: absolutePath),
                                     environment: environment, home: home(in: environment),
                                     renamedKeys: document.renamedKeys)
        let inventory = reader.read(document.root, path: absolutePath)
        guard let inventory, reader.diagnostics.isEmpty else {
            throw InventoryError(diagnostics: inFileOrder(reader.diagnostics))
        }
        return inventory
    }

    /// `$HOME` from the given environment, else the user's home directory.
    static func home(in environment: [String: String]) -> String {
        if let home = environment["HOME"], home.hasPrefix("/") {
            return InventoryPaths.normalized(home)
        }
        return InventoryPaths.normalized(FileManager.default.homeDirectoryForCurrentUser.path)
    }

    /// Sorted by position (stable), each problem once: an anchored block used by several hosts reports once.
    static func inFileOrder(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
        var unique: [Diagnostic] = []
        for diagnostic in diagnostics where !unique.contains(diagnostic) {
            unique.append(diagnostic)
        }
        return unique.enumerated().sorted { lhs, rhs in
            let (l, r) = (lhs.element.location, rhs.element.location)
            if l.line != r.line { return l.line < r.line }
            if l.column != r.column { return l.column < r.column }
            return lhs.offset < rhs.offset
        }.map(\.element)
    }
}
