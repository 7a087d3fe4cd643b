import Foundation
import Inventory
import SSHTransport

/// Reboots a host and waits for it: the SSH connection drops, and one comes back with a new boot id.
enum Reboot {
    static func perform(host: InventoryHost, connection: SSHConnection, pool: ConnectionPool, bootID: String?,
                        timeout: Double) async throws -> SSHConnection {
        guard let bootID else {
            throw SSHError(.protocolError, "\(host.name): cannot reboot safely: the host reports no boot id")
        }
        // Detached and delayed, so the command returns before the connection goes away.
        _ = try? await connection.run("nohup sh -c 'sleep 1; systemctl reboot || reboot' >/dev/null 2>&1 &",
                                      privileged: true, timeout: 10)
        await pool.drop(host.name)
        let deadline = ContinuousClock.now + .seconds(timeout)
        try await Task.sleep(for: .seconds(1.5))
        while ContinuousClock.now < deadline {
            if let fresh = try? await pool.connection(for: host) {
                let current = try? await fresh.run("cat /proc/sys/kernel/random/boot_id", timeout: 10)
                let id = current?.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                if let id, !id.isEmpty, id != bootID { return fresh }
                await pool.drop(host.name)  // still the old boot: it has not gone down yet
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw SSHError(.timeout, "\(host.name): did not come back with a new boot id within \(Int(timeout))s after reboot")
    }
}
