import Facts
import Foundation
import Inventory
import ProvisionBasics

/// Airgap install, procedure step 4 without the internet: the k3s binary for the host's architecture, its images
/// and the install script, from the inventory's airgap folder; a file already on the host with the same sha256 is
/// not sent again. The host's files are hashed only when `stat` no longer matches what `K3s.digestCache` recorded
/// when they were placed: the images alone are hundreds of MB, a whole second of sha256 on a Pi at every run.
public struct K3sAssetsStep: Step {
    public let id = "k3s-assets"
    public let summary = "k3s binary, airgap images and install script from the airgap folder"

    public init() {}

    public func concerns(_ host: InventoryHost) -> Bool { host.has(.server) || host.has(.agent) }

    /// `<sha256>  <path>` for each asset already on the host (sha256sum's format): from the digest cache when the
    /// file's `stat` matches its line there, else hashed.
    public func probe(for host: InventoryHost) -> String {
        """
        c=\(K3s.digestCache)
        for f in \(K3s.installScript) /usr/local/bin/k3s \(K3s.imagesFolder)/k3s-airgap-images-*; do
          [ -f "$f" ] || continue
          d=; [ -r $c ] && d=$(awk -v l="$(\(K3s.statKey) "$f") $f" 'substr($0, 66) == l { print substr($0, 1, 64); exit }' $c)
          if [ -n "$d" ]; then echo "$d  $f"; else sha256sum "$f"; fi
        done 2>/dev/null; true
        """
    }

    /// (local file, remote path, mode) for this host's architecture.
    func assets(_ context: StepContext) throws -> [(String, String, Int)] {
        guard let folder = context.inventory.k3s?.airgapDirectory else { return [] }
        guard let binary = K3s.binaryAsset(arch: context.facts.arch),
              let images = K3s.imagesAsset(arch: context.facts.arch) else {
            throw StepError("no k3s release asset for architecture \(context.facts.arch ?? "unknown")")
        }
        let fileManager = FileManager.default
        let imageFile = [".tar.zst", ".tar"].map { images + $0 }.first { fileManager.fileExists(atPath: folder + "/" + $0) }
        var wanted = [(folder + "/install.sh", K3s.installScript, 0o755), (folder + "/" + binary, "/usr/local/bin/k3s", 0o755)]
        if let imageFile { wanted.append((folder + "/" + imageFile, K3s.imagesFolder + "/" + imageFile, 0o644)) }
        for (local, _, _) in wanted where !fileManager.fileExists(atPath: local) {
            throw StepError("the airgap folder has no \((local as NSString).lastPathComponent): \(folder)")
        }
        if imageFile == nil {
            throw StepError("the airgap folder has no \(images).tar.zst or .tar: \(folder)")
        }
        return wanted
    }

    public func desiredState(_ context: StepContext) -> String {
        let digests = (try? assets(context))?.map { (try? K3s.digest(ofFile: $0.0)) ?? $0.0 } ?? []
        return ([id] + digests).joined(separator: "|")
    }

    public func decide(_ context: StepContext) throws -> Decision {
        var remote: [String: String] = [:]
        for line in context.probe.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 1)
            if words.count == 2 { remote[words[1].trimmingCharacters(in: .whitespaces)] = String(words[0]) }
        }
        // Each asset with its local digest, read once for the comparison and the digest cache.
        let wanted = try assets(context).map { local, path, mode in (local, path, mode, try K3s.digest(ofFile: local)) }
        var actions: [Action] = []
        var stale: [String] = []
        for (local, path, mode, digest) in wanted where remote[path] != digest {
            actions.append(.upload(localPath: local, remotePath: path, mode: mode))
            stale.append(path)
        }
        if actions.isEmpty { return .ok("k3s binary, images and install script match the airgap folder") }
        actions.append(.run(recordDigests(wanted.map { ($0.1, $0.3) })))
        if stale.contains("/usr/local/bin/k3s") {
            actions.append(.run("mkdir -p \((K3s.restartPending as NSString).deletingLastPathComponent) && touch \(K3s.restartPending)"))
        }
        return .change(reason: "\(stale.joined(separator: ", ")) missing or different from the airgap folder", actions: actions)
    }

    /// Rewrites the digest cache (a temporary file renamed into place) once the uploads are placed: every asset
    /// (remote path, digest) now has the airgap folder's digest, the ones sent and the ones the probe found matching.
    func recordDigests(_ assets: [(path: String, digest: String)]) -> String {
        // The remote paths are the fixed ones above (no blanks), so `set --` splits each pair.
        let pairs = assets.map { ShellQuote.quote("\($0.digest) \($0.path)") }
        let cache = K3s.digestCache
        return "mkdir -p \((cache as NSString).deletingLastPathComponent) && for a in \(pairs.joined(separator: " ")); do set -- $a; "
            + "[ ! -f \"$2\" ] || printf '%s %s %s\\n' \"$1\" \"$(\(K3s.statKey) \"$2\")\" \"$2\"; done > \(cache).tmp && mv -f \(cache).tmp \(cache)"
    }
}
