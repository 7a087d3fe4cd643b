import Foundation
import Testing
@testable import Inventory

/// Fixtures, sample environments and a way to see what a user would see.
enum InventoryFixtures {
    static let environment = ["HOME": "/home/op"]

    /// Absolute path of `Fixtures/inventories/<name>`.
    static func path(_ name: String) throws -> String {
        let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return fixtures.appendingPathComponent("inventories").appendingPathComponent(name).path
    }

    /// The repository's own `inventories/<name>`.
    static func example(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("inventories").appendingPathComponent(name).path
    }

    /// Parses inline YAML as `/srv/inventory.yaml`.
    static func parse(_ yaml: String, environment: [String: String] = environment) throws -> Inventory {
        try InventoryLoader.parse(yaml: yaml, path: "/srv/inventory.yaml", environment: environment)
    }

    /// The lines a user would see for inline YAML that does not load.
    static func problems(_ yaml: String, environment: [String: String] = environment,
                         sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
        do {
            _ = try parse(yaml, environment: environment)
            Issue.record("expected the inventory not to load", sourceLocation: sourceLocation)
            return []
        } catch let error as InventoryError {
            return error.diagnostics.map(\.description)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return []
        }
    }

    /// The lines a user would see for a file that does not load.
    static func problems(file path: String, environment: [String: String] = environment,
                         sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
        do {
            _ = try InventoryLoader.load(path: path, environment: environment)
            Issue.record("expected \(path) not to load", sourceLocation: sourceLocation)
            return []
        } catch let error as InventoryError {
            return error.diagnostics.map(\.description)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return []
        }
    }
}
