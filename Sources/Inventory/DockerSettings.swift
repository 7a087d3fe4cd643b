/// The `docker` block: which Docker the hosts with the role `runner` get, and from where.
public struct DockerSettings: Sendable, Equatable {
    /// docker.io from Debian's own archive, or docker-ce from Docker's apt repository.
    public enum Package: String, Sendable, CaseIterable {
        case dockerIO = "docker.io"
        case dockerCE = "docker-ce"
    }

    /// Docker's own repository for Debian; the key is at `<base>/gpg`.
    public static let defaultAptRepository = "https://download.docker.com/linux/debian"

    public var package: Package
    /// An apt version to pin, as `apt-cache policy` shows it (`5:27.5.1-1~debian.12~bookworm`); nil takes the newest.
    public var version: String?
    /// docker-ce only: the base URL of Docker's repository or of a mirror with its layout; nil for the default.
    public var aptRepository: String?

    public init(package: Package = .dockerIO, version: String? = nil, aptRepository: String? = nil) {
        self.package = package
        self.version = version
        self.aptRepository = aptRepository
    }

    /// The repository docker-ce comes from: `aptRepository`, else Docker's own.
    public var repository: String { aptRepository ?? Self.defaultAptRepository }
}
