import Engine
import Foundation
import GitLab
import Inventory
import Logging
import ProvisionBasics

/// The GitLab client an inventory's `gitlab:` block describes, as the engine's gateway.
enum GitLabAccess {
    static func gateway(for inventory: Inventory, redactor: Redactor, logger: Logger) throws -> (any GitLabGateway)? {
        guard let settings = inventory.gitlab else { return nil }
        guard let url = URL(string: settings.url) else {
            throw ValidationFailure("gitlab.url \(settings.url) is not a URL (\(inventory.path))")
        }
        let client = try GitLabClient(baseURL: url, token: Secret(settings.token ?? ""), tokenName: "gitlab.token",
                                      caFile: settings.caFile,
                                      timeouts: .init(request: .milliseconds(Int(settings.timeout * 1000))),
                                      logger: logger, redactor: redactor)
        return GitLabAPIGateway(client: client, registrationToken: settings.registrationToken.map(Secret.init))
    }
}

struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
