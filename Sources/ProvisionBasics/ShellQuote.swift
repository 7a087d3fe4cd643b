/// The one place where a value becomes part of a remote shell command line.
public enum ShellQuote {
    private static let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")

    /// Quotes `value` for POSIX sh: unchanged when it has only safe characters, else single-quoted.
    public static func quote(_ value: String) -> String {
        if !value.isEmpty, value.allSatisfy({ safe.contains($0) }) { return value }
        return "'" + value.replacing("'", with: "'\\''") + "'"
    }

    /// Joins words into one command line, each quoted.
    public static func join(_ words: [String]) -> String {
        words.map(quote).joined(separator: " ")
    }
}
