import Foundation
import Testing
@testable import Inventory

/// docs/inventory.md documents every key the reader accepts, each in the table of its block, so a key added to the
/// reader without a line in the docs fails here.
@Suite("Inventory: docs/inventory.md covers every key")
struct InventoryDocsTests {
    static let text: String = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/inventory.md").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }()

    /// The first-column keys of the first table under the heading `heading` (any level), outside code blocks.
    static func tableKeys(under heading: String) -> Set<String> {
        var keys: Set<String> = []
        var inside = false, inCode = false, inTable = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            if inCode { continue }
            if line.hasPrefix("#") {
                if inside { break }
                inside = line.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces) == heading
                continue
            }
            guard inside else { continue }
            if line.hasPrefix("|") {
                inTable = true
            } else if inTable {
                break
            }
            guard line.hasPrefix("| `") else { continue }
            keys.insert(String(line.dropFirst(3).prefix(while: { $0 != "`" })))
        }
        return keys
    }

    @Test("each block's table lists exactly the keys the reader accepts",
          arguments: [
            ("Top level", InventoryReader.topLevelKeys),
            ("ssh", SSHBlock.keys),
            ("k3s", InventoryReader.k3sKeys),
            ("docker", InventoryReader.dockerKeys),
            ("gitlab", InventoryReader.gitlabKeys),
            ("runnerPackage", InventoryReader.runnerPackageKeys),
            ("runners", InventoryReader.runnerKeys),
            ("serviceAccount", InventoryReader.serviceAccountKeys),
            ("agent", InventoryReader.agentKeys),
            ("hosts", InventoryReader.hostKeys),
          ])
    func table(heading: String, accepted: [String]) {
        #expect(!Self.text.isEmpty, "docs/inventory.md not found")
        let documented = Self.tableKeys(under: heading)
        let missing = Set(accepted).subtracting(documented)
        let extra = documented.subtracting(accepted)
        #expect(missing.isEmpty, "keys the reader accepts but '\(heading)' does not document: \(missing.sorted())")
        #expect(extra.isEmpty, "keys '\(heading)' documents but the reader refuses: \(extra.sorted())")
    }

    @Test("airgap's one key is documented with k3s")
    func airgap() {
        #expect(InventoryReader.airgapKeys == ["directory"])
        #expect(Self.text.contains("`{directory: <path>}`"))
    }
}
