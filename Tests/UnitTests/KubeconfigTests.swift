import Foundation
import Testing
@testable import Engine

/// The admin kubeconfig is pointed at the first server and written owner-only.
@Suite struct KubeconfigTests {
    /// As k3s writes /etc/rancher/k3s/k3s.yaml (data shortened).
    static func k3sYAML(server: String = "https://127.0.0.1:6443") -> String {
        """
        apiVersion: v1
        clusters:
        - cluster:
            certificate-authority-data: LS0tLS1CRUdJTg==
            server: \(server)
          name: default
        contexts:
        - context:
            cluster: default
            user: default
          name: default
        current-context: default
        kind: Config
        preferences: {}
        users:
        - name: default
          user:
            client-certificate-data: LS0tLS1DRVJU
            client-key-data: LS0tLS1LRVk=

        """
    }

    @Test func theLoopbackServerPointsAtTheFirstServerAndNothingElseChanges() {
        let (text, count) = Kubeconfig.pointing(Self.k3sYAML(), at: "10.250.3.11")
        #expect(count == 1)
        #expect(text == Self.k3sYAML(server: "https://10.250.3.11:6443"))
    }

    @Test func localhostAndIPv6LoopbackToo_andAnIPv6AddressIsBracketed() {
        #expect(Kubeconfig.pointing(Self.k3sYAML(server: "https://localhost:6443"), at: "pi-1.lan").text
                == Self.k3sYAML(server: "https://pi-1.lan:6443"))
        #expect(Kubeconfig.pointing(Self.k3sYAML(server: "https://[::1]:6443"), at: "fd00::11").text
                == Self.k3sYAML(server: "https://[fd00::11]:6443"))
        #expect(Kubeconfig.pointing(Self.k3sYAML(server: "\"https://127.0.0.1:7443\""), at: "10.0.0.1").text
                == Self.k3sYAML(server: "\"https://10.0.0.1:7443\""))
    }

    @Test func aServerElsewhereOrALookAlikeIsLeftAlone() {
        for server in ["https://10.0.0.9:6443", "https://127.0.0.10:6443", "https://localhost.example:6443",
                       "http://127.0.0.1:6443"] {
            let (text, count) = Kubeconfig.pointing(Self.k3sYAML(server: server), at: "10.0.0.1")
            #expect(count == 0 && text == Self.k3sYAML(server: server), "\(server)")
        }
    }

    @Test func theFileIsOwnerOnlyAndReplacesTheOldOneWholeWithNothingLeftBeside() throws {
        let folder = NSTemporaryDirectory() + "kubeconfig-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = folder + "/lab.yaml"
        try "old\n".write(toFile: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
        try Kubeconfig.write(Self.k3sYAML(), to: file)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == Self.k3sYAML())
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["lab.yaml"])
        #expect(throws: KubeconfigError.self) { try Kubeconfig.write("x", to: folder + "/missing/lab.yaml") }
    }
}
