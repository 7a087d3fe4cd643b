import ProvisionBasics

/// How a command becomes root for a non-root login: through sudo, with any password on stdin, never argv.
public enum Privilege {
    /// The command line and the bytes to send before the command's own stdin.
    public struct Wrapped: Sendable, Equatable {
        public var command: String
        public var stdinPrefix: String?

        public init(command: String, stdinPrefix: String?) {
            self.command = command
            self.stdinPrefix = stdinPrefix
        }
    }

    public static func wrap(_ command: String, user: String, sudoPassword: String?) -> Wrapped {
        if user == "root" { return Wrapped(command: command, stdinPrefix: nil) }
        let inner = ShellQuote.quote(command)
        guard let sudoPassword else {
            // -n: fail at once with "a password is required" instead of waiting for a prompt nobody answers.
            return Wrapped(command: "sudo -n -- sh -c \(inner)", stdinPrefix: nil)
        }
        // -k forces sudo to read the password now, so the line on stdin is always consumed by sudo itself;
        // for a NOPASSWD rule sudo asks nothing, so that branch reads the line away first.
        let script = "if sudo -n true 2>/dev/null; then IFS= read -r _; exec sudo -n -- sh -c \"$1\"; "
            + "else exec sudo -k -S -p '' -- sh -c \"$1\"; fi"
        return Wrapped(command: "sh -c \(ShellQuote.quote(script)) sh \(inner)", stdinPrefix: sudoPassword + "\n")
    }
}
