import Crypto
import Foundation
import Inventory
import ProvisionBasics
import Synchronization

/// What the k3s steps share: names and paths from the contracts (k3s install script, airgap assets).
public enum K3s {
    /// Where the install script is kept on hosts, so re-runs use the same one.
    public static let installScript = "/usr/local/share/provision/k3s-install.sh"
    public static let configFile = "/etc/rancher/k3s/config.yaml"
    public static let imagesFolder = "/var/lib/rancher/k3s/agent/images"
    /// Left by k3s-assets when it replaces the binary, removed by k3s-service once k3s has restarted on it: a running
    /// k3s keeps the old binary, and the install script alone would not restart it.
    public static let restartPending = "/var/lib/provision/k3s-restart-pending"
    /// The assets' digests as k3s-assets last placed or checked them, each with the file's inode, size, mtime and
    /// ctime: `<sha256> <inode> <size> <mtime> <ctime> <path>`. Any write, chmod or rename changes ctime, so a file
    /// whose `stat` still matches its line is the file that was hashed, and the probe need not read it again.
    public static let digestCache = "/var/lib/provision/k3s-assets.sha256"
    /// The part of a `digestCache` line `stat` gives (nanosecond times; ctime cannot be set back by a user).
    static let statKey = "stat -c '%i %s %y %z'"

    /// Disruption groups (`Action.disruptive`): one server out of service at a time; agents by --max-unavailable.
    public static let serversGroup = "k3s-servers"
    public static let agentsGroup = "k3s-agents"
    /// Marks a node provision cordoned, so a later run uncordons only what it cordoned itself.
    public static let drainedAnnotation = "provision/drained"

    public static func group(for host: InventoryHost) -> String { host.has(.server) ? serversGroup : agentsGroup }

    /// `k3s-token`'s value, else the inventory's (a run without the first server still knows it then).
    public static func token(_ context: StepContext) -> String? {
        context.shared[K3sTokenStep.sharedKey] ?? context.inventory.k3s?.token
    }

    /// `k3s` service for servers, `k3s-agent` for agents.
    public static func unit(for host: InventoryHost) -> String { host.has(.server) ? "k3s" : "k3s-agent" }

    /// Release asset names follow `uname -m`: x86_64 → k3s, aarch64 → k3s-arm64, armv7 → k3s-armhf.
    public static func binaryAsset(arch: String?) -> String? {
        switch arch {
        case "x86_64", "amd64": "k3s"
        case "aarch64", "arm64": "k3s-arm64"
        case let value? where value.hasPrefix("armv7"): "k3s-armhf"
        default: nil
        }
    }

    public static func imagesAsset(arch: String?) -> String? {
        switch arch {
        case "x86_64", "amd64": "k3s-airgap-images-amd64"
        case "aarch64", "arm64": "k3s-airgap-images-arm64"
        case let value? where value.hasPrefix("armv7"): "k3s-airgap-images-arm"
        default: nil
        }
    }

    /// The API address agents and joining servers use.
    public static func serverURL(_ inventory: Inventory) -> String? {
        guard let first = inventory.firstServer else { return nil }
        let host = first.address.contains(":") ? "[\(first.address)]" : first.address
        return "https://\(host):6443"
    }

    /// By path; `lasting` is false for a file that changed in the last two seconds: this run uses its digest, the
    /// journal does not keep it.
    private static let digests = Mutex([String: (digest: FileDigest, lasting: Bool)]())
    private static let hashing = Mutex(())

    /// The sha256 of a local file (hex), hashed once per identity: a digest this run or the journal (`remember`)
    /// already has for the file as `stat` describes it now is used as it is.
    public static func digest(ofFile path: String) throws -> String {
        let (identity, changedAt) = try fileStat(path)
        if let known = digests.withLock({ $0[path]?.digest }), known.identity == identity { return known.sha256 }
        return try hashing.withLock { _ throws(StepError) -> String in
            if let known = digests.withLock({ $0[path]?.digest }), known.identity == identity { return known.sha256 }
            guard let handle = FileHandle(forReadingAtPath: path) else { throw StepError("cannot read \(path)") }
            defer { try? handle.close() }
            var hasher = SHA256()
            do {
                while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
            } catch { throw StepError("cannot read \(path): \(error.localizedDescription)") }
            let digest = ManagedFile.hex(hasher.finalize())
            // Not kept when the file changed while it was read; not kept beyond this run (as git does for its index)
            // when it changed in the last two seconds: a write in the same clock tick would leave the same identity.
            guard (try? self.identity(ofFile: path)) == identity else { return digest }
            let entry = (FileDigest(path: path, identity: identity, sha256: digest), lasting: changedAt < Int(time(nil)) - 2)
            digests.withLock { $0[path] = entry }
            return digest
        }
    }

    /// Digests kept from earlier runs; one whose file no longer matches its identity is simply hashed again.
    public static func remember(_ known: [FileDigest]) {
        digests.withLock { table in
            for digest in known where table[digest.path] == nil { table[digest.path] = (digest, lasting: true) }
        }
    }

    /// The digests worth keeping for later runs.
    public static func knownDigests() -> [FileDigest] {
        digests.withLock { $0.values.filter(\.lasting).map(\.digest) }.sorted { $0.path < $1.path }
    }

    static func identity(ofFile path: String) throws(StepError) -> String { try fileStat(path).identity }

    /// The file's identity and its change time in seconds, from one `stat`.
    private static func fileStat(_ path: String) throws(StepError) -> (identity: String, changedAt: Int) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StepError("cannot read \(path): \(String(cString: strerror(errno)))") }
        let identity = "\(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) "
            + "\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
        return (identity, Int(info.st_ctim.tv_sec))
    }
}
