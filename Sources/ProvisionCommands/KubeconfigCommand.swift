import ArgumentParser
import Engine
import Foundation
import ProvisionBasics

/// `provision kubeconfig INVENTORY`: the cluster's admin kubeconfig, pointed at the first server's address.
struct KubeconfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeconfig",
        abstract: "Print the cluster's admin kubeconfig, pointed at the first server's address.",
        discussion: "Reads /etc/rancher/k3s/k3s.yaml on the first server (as root) and replaces its "
            + "https://127.0.0.1:6443 with https://<first server address>:6443. It holds the admin client key: "
            + "--output writes it 0600 from the start.")

    @OptionGroup var options: HostOptions

    @Option(help: "Write it to this file (mode 0600, replaced atomically) instead of printing it.")
    var output: String?

    func validate() throws {
        if !options.hosts.isEmpty {
            throw ValidationError("--host does not apply: the kubeconfig always comes from the first server")
        }
    }

    func run() async throws {
        let inventory = try options.loadInventory()
        guard let first = inventory.firstServer else {
            Console.error("\(inventory.path) has no host with the server role: there is no cluster to read a kubeconfig from")
            throw ExitCode(1)
        }
        let pool = ConnectionPool(logger: options.logger(redacting: inventory))
        let original: String
        do {
            original = try await Kubeconfig.read(from: first, pool: pool, inventoryPath: inventory.path)
        } catch {
            await pool.closeAll()
            Console.error(String(describing: error))
            throw ExitCode(1)
        }
        await pool.closeAll()
        let (text, rewritten) = Kubeconfig.pointing(original, at: first.address)
        if rewritten == 0 {
            Console.error("notice: no server line of \(Kubeconfig.path) on \(first.name) points at 127.0.0.1; left as it is")
        }
        guard let output else {
            Console.out(text)
            return
        }
        do {
            try Kubeconfig.write(text, to: output)
        } catch {
            Console.error(String(describing: error))
            throw ExitCode(1)
        }
        Console.error("wrote the kubeconfig of \(first.name)'s cluster to \(output) (mode 0600)")
    }
}
