import Foundation

/// Where an inventory's journal and lock live: beside it, so they travel with the inventory they describe.
public enum JournalLocation {
    /// `<inventory dir>/.provision/<inventory file name without extension>.db` and `.lock` beside it.
    public static func database(forInventory path: String) -> String {
        file(forInventory: path, extension: "db")
    }

    public static func lock(forInventory path: String) -> String {
        file(forInventory: path, extension: "lock")
    }

    private static func file(forInventory path: String, extension ext: String) -> String {
        let inventory = path as NSString
        let name = (inventory.lastPathComponent as NSString).deletingPathExtension
        let folder = (inventory.deletingLastPathComponent as NSString).appendingPathComponent(".provision")
        return (folder as NSString).appendingPathComponent("\(name).\(ext)")
    }
}
