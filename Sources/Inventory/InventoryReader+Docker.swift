import Yams

// Reading the `docker` block.
extension InventoryReader {
    static let dockerKeys = ["package", "version", "aptRepository"]

    mutating func readDocker(_ entry: Entry) -> DockerSettings? {
        guard let fields = fields(of: entry.value, named: "docker", allowed: Self.dockerKeys, context: "in docker",
                                  fallback: entry.keyLocation) else { return nil }
        var settings = DockerSettings()
        var valid = true
        for entry in fields.entries {
            switch entry.key {
            case "package":
                guard let package = choice(entry, of: DockerSettings.Package.self) else { valid = false; continue }
                settings.package = package
            case "version":
                guard let version = string(entry) else { valid = false; continue }
                if let problem = InventorySyntax.aptVersionProblem(version) {
                    error(problem, at: valueLocation(entry))
                    valid = false
                }
                settings.version = version
            case "aptRepository":
                guard let url = repositoryURL(entry, example: DockerSettings.defaultAptRepository) else {
                    valid = false
                    continue
                }
                settings.aptRepository = url
            default: break
            }
        }
        // An unreadable package was reported already; docker.io is then only the default, not the user's choice.
        if let repository = fields["aptRepository"], settings.package == .dockerIO, valid || fields["package"] == nil {
            error("aptRepository is for package docker-ce (Docker's repository); docker.io comes from the host's own "
                  + "Debian sources: set package: docker-ce or remove aptRepository", at: repository.keyLocation)
            valid = false
        }
        return valid ? settings : nil
    }

    /// The base URL of an apt repository, without a trailing '/' (the tool appends the paths below it).
    mutating func repositoryURL(_ entry: Entry, example: String) -> String? {
        guard let url = string(entry) else { return nil }
        if let problem = InventorySyntax.urlProblem(url, key: entry.key, example: example) {
            error(problem, at: valueLocation(entry))
            return nil
        }
        var base = Substring(url)
        while base.hasSuffix("/") { base = base.dropLast() }
        return String(base)
    }
}
