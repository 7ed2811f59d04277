import FulcrumCore

/// Named items inside the configuration document, edited as API resources: services (a mapping
/// keyed by name), a service's nodes and the routes (lists of objects with a `name` field).
/// Every item is shown with its `name` as the first member, whichever way it is stored.
struct NamedCollection: Sendable {
    enum Storage: Sendable {
        /// `{name: {fields}}`
        case mapping
        /// `[{name: ..., fields}]`
        case list
    }

    let noun: String
    let storage: Storage
    /// Where the collection is in the document.
    let path: [String]

    static let services = NamedCollection(noun: "service", storage: .mapping, path: ["services"])
    static let routes = NamedCollection(noun: "route", storage: .list, path: ["routes"])
    static func nodes(of service: String) -> NamedCollection {
        NamedCollection(noun: "node", storage: .list, path: ["services", service, "nodes"])
    }

    /// Every item, in document order.
    func items(in document: ConfigDocument) -> [ConfigDocument] {
        let container = document.value(at: path)
        switch storage {
        case .mapping:
            return container?.members.map { Self.withName($0.key, $0.value) } ?? []
        case .list:
            return container?.items ?? []
        }
    }

    func names(in document: ConfigDocument) -> [String] {
        items(in: document).map { $0["name"]?.stringValue ?? "" }
    }

    /// The item called `name`. - Throws: 404.
    func item(_ name: String, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        guard let item = items(in: document).first(where: { $0["name"]?.stringValue == name }) else {
            throw .notFound("there is no \(noun) '\(name)'")
        }
        return item
    }

    /// The document with `body` added as a new item (at `position`, or last). - Throws: 400, 409.
    func inserting(_ body: ConfigDocument, at position: Int?, into document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        guard let name = body["name"]?.stringValue, !name.isEmpty else {
            throw .badRequest("the \(noun) needs a 'name' (a non-empty string)")
        }
        var items = items(in: document)
        if items.contains(where: { $0["name"]?.stringValue == name }) { throw .exists("a \(noun) named '\(name)' exists") }
        let index = min(max(position ?? items.count, 0), items.count)
        items.insert(body, at: index)
        return storing(items, in: document)
    }

    /// The document with item `name` replaced by `body` (whose `name`, if any, must be `name`).
    func replacing(_ name: String, with body: ConfigDocument, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        var body = body
        if let bodyName = body["name"], bodyName.stringValue != name {
            throw .badRequest("the body names the \(noun) \(bodyName.jsonText()) but the path names '\(name)'; renaming is a delete and a create")
        }
        body = Self.withName(name, body)
        var items = items(in: document)
        guard let index = items.firstIndex(where: { $0["name"]?.stringValue == name }) else {
            throw .notFound("there is no \(noun) '\(name)'")
        }
        items[index] = body
        return storing(items, in: document)
    }

    /// The document with a JSON merge patch applied to item `name`.
    func patching(_ name: String, with patch: ConfigDocument, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        let current = try item(name, in: document)
        return try replacing(name, with: current.merged(with: patch), in: document)
    }

    /// The document without item `name`.
    func removing(_ name: String, from document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        var items = items(in: document)
        guard let index = items.firstIndex(where: { $0["name"]?.stringValue == name }) else {
            throw .notFound("there is no \(noun) '\(name)'")
        }
        items.remove(at: index)
        return storing(items, in: document)
    }

    /// The document with item `name` moved to `position` (0 is first).
    func moving(_ name: String, to position: Int, in document: ConfigDocument) throws(AdminError) -> ConfigDocument {
        var items = items(in: document)
        guard let index = items.firstIndex(where: { $0["name"]?.stringValue == name }) else {
            throw .notFound("there is no \(noun) '\(name)'")
        }
        let item = items.remove(at: index)
        items.insert(item, at: min(max(position, 0), items.count))
        return storing(items, in: document)
    }

    private func storing(_ items: [ConfigDocument], in document: ConfigDocument) -> ConfigDocument {
        var document = document
        switch storage {
        case .mapping:
            document.setValue(
                .mapping(items.map { item in
                    .init(item["name"]?.stringValue ?? "", .mapping(item.members.filter { $0.key != "name" }))
                }), at: path)
        case .list:
            document.setValue(.list(items), at: path)
        }
        return document
    }

    private static func withName(_ name: String, _ value: ConfigDocument) -> ConfigDocument {
        .mapping([.init("name", .string(name))] + value.members.filter { $0.key != "name" })
    }
}
