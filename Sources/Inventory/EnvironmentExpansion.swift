/// `${env:NAME}` references inside scalar values; `$${` stands for a literal `${`.
enum EnvironmentExpansion {
    struct Result {
        var value: String?
        /// One message per problem; `value` is nil when there is any.
        var problems: [String]
        var expanded: Bool
    }

    static func expand(_ text: String, environment: [String: String]) -> Result {
        guard text.contains("$") else { return Result(value: text, problems: [], expanded: false) }
        var output = ""
        var problems: [String] = []
        var expanded = false
        let scalars = Array(text.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            let next = index + 1 < scalars.count ? scalars[index + 1] : nil
            if scalar == "$", next == "$", index + 2 < scalars.count, scalars[index + 2] == "{" {
                output += "${"
                index += 3
                continue
            }
            guard scalar == "$", next == "{" else {
                output.unicodeScalars.append(scalar)
                index += 1
                continue
            }
            guard let close = scalars[(index + 2)...].firstIndex(of: "}") else {
                problems.append("unterminated '${' (write $${ for a literal '${')")
                break
            }
            let reference = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
            index = close + 1
            guard reference.hasPrefix("env:"), isVariableName(reference.dropFirst(4)) else {
                problems.append("unsupported reference '${\(reference)}'; "
                    + "use ${env:NAME} for an environment variable, or $${ for a literal '${'")
                continue
            }
            let name = String(reference.dropFirst(4))
            guard let value = environment[name] else {
                problems.append("environment variable '\(name)' is not set")
                continue
            }
            output += value
            expanded = true
        }
        return Result(value: problems.isEmpty ? output : nil, problems: problems, expanded: expanded)
    }

    /// Letters, digits and '_', not starting with a digit, as POSIX shells accept.
    private static func isVariableName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
        }
    }
}
