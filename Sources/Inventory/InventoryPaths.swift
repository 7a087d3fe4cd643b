/// Turns the paths written in an inventory into absolute ones.
enum InventoryPaths {
    /// `~` and `~/…` are under `home`; a relative path is relative to `baseDirectory` (the inventory's folder).
    /// Returns an error message for forms we do not support.
    static func resolve(_ path: String, home: String, baseDirectory: String) -> Result<String, PathError> {
        let absolute: String
        if path == "~" {
            absolute = home
        } else if path.hasPrefix("~/") {
            absolute = home + "/" + path.dropFirst(2)
        } else if path.hasPrefix("~") {
            return .failure(PathError(message: "'~user' paths are not supported; use '~/…' or an absolute path"))
        } else if path.hasPrefix("/") {
            absolute = path
        } else {
            absolute = baseDirectory + "/" + path
        }
        return .success(normalized(absolute))
    }

    /// Removes `.`, `..` and repeated slashes without touching the file system (symbolic links stay as written).
    static func normalized(_ absolutePath: String) -> String {
        var components: [Substring] = []
        for component in absolutePath.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// The folder that holds `file`, which must be absolute.
    static func directory(of file: String) -> String {
        var components = normalized(file).split(separator: "/")
        _ = components.popLast()
        return "/" + components.joined(separator: "/")
    }

    struct PathError: Error {
        var message: String
    }
}
