import Foundation
import Mustache

/// The templates files on hosts come from: built-in ones (this folder's host/), or a user's override folder.
public struct TemplateSet: Sendable {
    /// A folder whose `host/NAME` replaces the built-in `host/NAME` (usually `templates/` beside the inventory).
    public let overrideDirectory: String?

    public init(overrideDirectory: String? = nil) {
        self.overrideDirectory = overrideDirectory
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where `name` is read from: the override when present, else the built-in copy.
    public func source(of name: String) throws -> String {
        if let overrideDirectory {
            let path = overrideDirectory + "/host/" + name
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        guard let url = Bundle.module.url(forResource: "host/" + name, withExtension: nil) else {
            throw Failure(description: "no template named \(name)")
        }
        return url.path
    }

    /// Renders `name` with `values` as plain text.
    public func render(_ name: String, _ values: [String: Any]) throws -> String {
        let path = try source(of: name)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(description: "cannot read template \(path)")
        }
        do {
            // Config files are not HTML: nothing may be escaped.
            let template = try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT }}" + text)
            return template.render(values)
        } catch {
            throw Failure(description: "template \(path) does not parse: \(error)")
        }
    }
}
