import Yams

// Reading the `k3s` block and the lists it holds.
extension InventoryReader {
    static let airgapKeys = ["directory"]

    mutating func readK3s(_ entry: Entry) -> K3sSettings? {
        guard let fields = fields(of: entry.value, named: "k3s", allowed: Self.k3sKeys, context: "in k3s",
                                  fallback: entry.keyLocation) else { return nil }
        require(["version"], in: fields, owner: "k3s")
        var settings = K3sSettings(version: "")
        var valid = true
        func keep<Value>(_ value: Value?, _ field: WritableKeyPath<K3sSettings, Value?>) {
            if let value { settings[keyPath: field] = value } else { valid = false }
        }
        for entry in fields.entries {
            switch entry.key {
            case "version":
                guard let version = string(entry) else { valid = false; continue }
                if let problem = InventorySyntax.k3sVersionProblem(version) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                settings.version = version
            case "token": keep(string(entry, secret: true), \.token)
            case "airgap": keep(readAirgap(entry), \.airgapDirectory)
            case "installScriptURL":
                guard let url = string(entry) else { valid = false; continue }
                if let problem = InventorySyntax.installScriptURLProblem(url) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                settings.installScriptURL = url
            case "tlsSan":
                guard let names = stringList(entry, example: "[k3s.lab.example, 192.168.1.10]") else {
                    valid = false
                    continue
                }
                for (name, location) in names where !InventorySyntax.isSubjectAltName(name) {
                    error("tlsSan entry '\(Self.shortened(name))' is not an IP address or a DNS name", at: location)
                    valid = false
                }
                settings.tlsSan = names.map(\.text)
            case "disable":
                guard let components = readDisable(entry) else { valid = false; continue }
                settings.disable = components
            case "writeKubeconfigMode":
                guard let mode = string(entry) else { valid = false; continue }
                if let problem = InventorySyntax.fileModeProblem(mode) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                settings.writeKubeconfigMode = mode
            case "config":
                guard let config = readConfig(entry) else { valid = false; continue }
                settings.config = config
            default: break
            }
        }
        if let airgap = fields["airgap"], let url = fields["installScriptURL"] {
            let (first, second) = airgap.keyLocation.line < url.keyLocation.line
                || (airgap.keyLocation.line == url.keyLocation.line
                    && airgap.keyLocation.column < url.keyLocation.column) ? (airgap, url) : (url, airgap)
            error("airgap and installScriptURL cannot both be set: airgap installs from the local folder without "
                  + "downloading anything; remove one (the other is at "
                  + Self.reference(to: first.keyLocation, from: second.keyLocation) + ")", at: second.keyLocation)
            valid = false
        }
        return valid && fields["version"] != nil ? settings : nil
    }

    private mutating func readAirgap(_ entry: Entry) -> String? {
        guard let fields = fields(of: entry.value, named: "airgap", allowed: Self.airgapKeys, context: "in airgap",
                                  fallback: entry.keyLocation) else { return nil }
        require(["directory"], in: fields, owner: "airgap")
        return fields["directory"].flatMap { path($0) }
    }

    private mutating func readDisable(_ entry: Entry) -> [String]? {
        guard let items = stringList(entry, example: "[traefik, servicelb]") else { return nil }
        var components: [String] = []
        var valid = true
        for (component, location) in items {
            guard K3sSettings.components.contains(component) else {
                error("disable: unknown component '\(Self.shortened(component))'; expected "
                      + Self.alternatives(K3sSettings.components)
                      + Suggestion.hint(for: component, among: K3sSettings.components), at: location)
                valid = false
                continue
            }
            if components.contains(component) {
                error("disable: '\(component)' is listed twice", at: location)
                continue
            }
            components.append(component)
        }
        return valid ? components : nil
    }

    // MARK: config

    private mutating func readConfig(_ entry: Entry) -> [ConfigEntry]? {
        guard let fields = fields(of: entry.value, named: "config", allowed: nil, context: "in config",
                                  fallback: entry.keyLocation) else { return nil }
        var valid = true
        for field in fields.entries {
            // `key+` appends to a key in k3s' config files, so it is the same key.
            let flag = field.key.hasSuffix("+") ? String(field.key.dropLast()) : field.key
            if let owner = K3sSettings.ownedConfigKeys[flag] {
                error("config key '\(field.key)' is set by provision itself; use \(owner) instead",
                      at: field.keyLocation)
                valid = false
            }
        }
        let entries = configEntries(fields, path: "config")
        return valid ? entries : nil
    }

    /// The entries of a config map, or nil when any value is not a string, a list of strings or a map.
    private mutating func configEntries(_ fields: Fields, path: String) -> [ConfigEntry]? {
        var entries: [ConfigEntry] = []
        var valid = true
        for field in fields.entries {
            let name = "\(path).\(field.key)"
            guard let value = configValue(field, named: name) else {
                valid = false
                continue
            }
            entries.append(ConfigEntry(key: field.key, value: value))
        }
        return valid ? entries : nil
    }

    private mutating func configValue(_ field: Entry, named name: String) -> ConfigValue? {
        let expected = "a string, a list of strings or a mapping"
        switch field.value {
        case .sequence(let list):
            var items: [String] = []
            var valid = true
            for item in list {
                guard let text = scalarText(item, named: "an item of \(name)", expected: "a string",
                                            at: location(of: item, or: field.keyLocation))?.text else {
                    valid = false
                    continue
                }
                items.append(text)
            }
            return valid ? .list(items) : nil
        case .mapping:
            guard let fields = fields(of: field.value, named: name, allowed: nil, context: "in \(name)",
                                      fallback: field.keyLocation),
                  let entries = configEntries(fields, path: name) else { return nil }
            return .map(entries)
        default:
            return scalarText(field.value, named: name, expected: expected, at: field.keyLocation)
                .map { .string($0.text) }
        }
    }

    // MARK: Lists

    /// A list of non-empty strings, each with where it is written; a single string is an error naming `example`.
    mutating func stringList(_ entry: Entry, example: String) -> [(text: String, location: SourceLocation)]? {
        guard case .sequence(let list) = entry.value else {
            error("\(entry.key) must be a list such as \(example), got \(describe(entry.value))",
                  at: valueLocation(entry))
            return nil
        }
        var items: [(text: String, location: SourceLocation)] = []
        var valid = true
        for item in list {
            let itemEntry = Entry(key: "each item of \(entry.key)",
                                  keyLocation: location(of: item, or: entry.keyLocation), value: item)
            guard let text = string(itemEntry) else {
                valid = false
                continue
            }
            items.append((text, itemEntry.keyLocation))
        }
        return valid ? items : nil
    }
}
