import FulcrumCore

extension AdminContext {
    /// Services, nodes, routes and their policies: each an editable part of the configuration.
    func resourceEndpoints() -> [AdminEndpoint] {
        collectionEndpoints("/api/v1/services", idParameter: "service", plural: "services") { _ in .services }
            + collectionEndpoints("/api/v1/services/{service}/nodes", idParameter: "node", plural: "nodes") { call throws(AdminError) in
                let service = call.parameter("service")
                _ = try NamedCollection.services.item(service, in: await self.controller.active.document)
                return .nodes(of: service)
            }
            + collectionEndpoints("/api/v1/routes", idParameter: "route", plural: "routes") { _ in .routes }
            + nodeStateEndpoints() + [moveRouteEndpoint()]
            + policyEndpoints(owner: "/api/v1/services/{service}", parameter: "service", collection: .services, policies: Self.servicePolicies)
            + policyEndpoints(owner: "/api/v1/routes/{route}", parameter: "route", collection: .routes, policies: Self.routePolicies)
            + settingEndpoints()
    }

    /// Get, set and remove the top-level settings (access rules, CC, trusted proxies).
    private func settingEndpoints() -> [AdminEndpoint] {
        let controller = self.controller
        let path = "/api/v1/settings/{setting}"
        let list = PolicySchemas.settings.joined(separator: ", ")
        @Sendable func setting(_ call: AdminCall) throws(AdminError) -> String {
            let name = call.parameter("setting")
            guard PolicySchemas.settings.contains(name) else { throw .notFound("there is no setting '\(name)' (there are: \(list))") }
            return name
        }
        @Sendable func set(_ call: AdminCall, _ value: ConfigDocument?) async throws(AdminError) -> AdminReply {
            let name = try setting(call)
            let outcome = try await controller.change(call.changeRequest(target: "settings/\(name)")) { document throws(AdminError) in
                var changed = document
                changed[name] = value
                return changed
            }
            return Self.changeReply(outcome, item: outcome.version.document[name] ?? .null)
        }
        return [
            AdminEndpoint("GET", path, .viewer, "One top-level setting (\(list)); null when not set", returns: "AnyJSON") { call throws(AdminError) in
                let name = try setting(call)
                let active = await controller.active
                return .json(active.document[name] ?? .null, version: active.number)
            },
            AdminEndpoint("PUT", path, .configChange, "Set one top-level setting (\(list))", body: "AnyJSON", returns: "ChangeResult") { call throws(AdminError) in
                let body = try call.requireBody()
                guard body != .null else { throw .badRequest("to remove a setting, DELETE it") }
                return try await set(call, body)
            },
            AdminEndpoint("DELETE", path, .configChange, "Remove one top-level setting (\(list))", returns: "ChangeResult") { call throws(AdminError) in
                try await set(call, nil)
            },
        ]
    }

    static let servicePolicies = PolicySchemas.servicePolicies
    static let routePolicies = PolicySchemas.routePolicies

    /// List, create, get, replace, patch (JSON merge patch) and delete for one kind of named item.
    private func collectionEndpoints(
        _ base: String, idParameter: String, plural: String,
        collection: @escaping @Sendable (AdminCall) async throws(AdminError) -> NamedCollection
    ) -> [AdminEndpoint] {
        let controller = self.controller
        let item = "\(base)/{\(idParameter)}"
        @Sendable func target(_ call: AdminCall, _ name: String? = nil) -> String {
            var parts = call.path.split(separator: "/").dropFirst(2).map(String.init)
            if let name, parts.last != name { parts.append(name) }
            return parts.joined(separator: "/")
        }
        return [
            AdminEndpoint("GET", base, .viewer, "List the \(plural)", returns: "ItemList") { call throws(AdminError) in
                let set = try await collection(call)
                let active = await controller.active
                return .json(.mapping([.init("items", .list(set.items(in: active.document)))]), version: active.number)
            },
            AdminEndpoint(
                "POST", base, .configChange, "Add to the \(plural)", body: "Item", returns: "ChangeResult", status: 201,
                query: [.init(name: "position", type: "integer", description: "Where to insert (0 is first; default last).")]
            ) { call throws(AdminError) in
                let set = try await collection(call)
                let body = try call.requireObject()
                let position = try call.intQuery("position", in: 0...Int.max)
                let name = body["name"]?.stringValue ?? ""
                let outcome = try await controller.change(call.changeRequest(target: target(call, name))) { document throws(AdminError) in
                    try set.inserting(body, at: position, into: document)
                }
                return Self.changeReply(outcome, item: try set.item(name, in: outcome.version.document), status: 201)
            },
            AdminEndpoint("GET", item, .viewer, "One of the \(plural)", returns: "Item") { call throws(AdminError) in
                let set = try await collection(call)
                let active = await controller.active
                return .json(try set.item(call.parameter(idParameter), in: active.document), version: active.number)
            },
            AdminEndpoint("PUT", item, .configChange, "Replace one of the \(plural)", body: "Item", returns: "ChangeResult") { call throws(AdminError) in
                let set = try await collection(call)
                let body = try call.requireObject()
                let name = call.parameter(idParameter)
                let outcome = try await controller.change(call.changeRequest(target: target(call))) { document throws(AdminError) in
                    try set.replacing(name, with: body, in: document)
                }
                return Self.changeReply(outcome, item: try set.item(name, in: outcome.version.document))
            },
            AdminEndpoint("PATCH", item, .configChange, "Change fields of one of the \(plural) (JSON merge patch; null removes a field)", body: "Item", returns: "ChangeResult") { call throws(AdminError) in
                let set = try await collection(call)
                let body = try call.requireObject()
                let name = call.parameter(idParameter)
                let outcome = try await controller.change(call.changeRequest(target: target(call))) { document throws(AdminError) in
                    try set.patching(name, with: body, in: document)
                }
                return Self.changeReply(outcome, item: try set.item(name, in: outcome.version.document))
            },
            AdminEndpoint("DELETE", item, .configChange, "Remove one of the \(plural)", returns: "ChangeResult") { call throws(AdminError) in
                let set = try await collection(call)
                let name = call.parameter(idParameter)
                let outcome = try await controller.change(call.changeRequest(target: target(call))) { document throws(AdminError) in
                    try set.removing(name, from: document)
                }
                return Self.changeReply(outcome)
            },
        ]
    }

    /// Drain (no new balanced requests) and enable a node.
    private func nodeStateEndpoints() -> [AdminEndpoint] {
        let controller = self.controller
        return [("drain", true), ("enable", false)].map { action, drain in
            AdminEndpoint(
                "POST", "/api/v1/services/{service}/nodes/{node}/\(action)", .configChange,
                drain ? "Drain a node: it gets no new balanced requests; requests in flight finish" : "Put a drained node back into rotation",
                returns: "ChangeResult"
            ) { call throws(AdminError) in
                let service = call.parameter("service")
                let node = call.parameter("node")
                let nodes = NamedCollection.nodes(of: service)
                let outcome = try await controller.change(call.changeRequest(target: "services/\(service)/nodes/\(node)")) { document throws(AdminError) in
                    _ = try NamedCollection.services.item(service, in: document)
                    return try nodes.patching(node, with: .mapping([.init("drain", drain ? .bool(true) : .null)]), in: document)
                }
                return Self.changeReply(outcome, item: try nodes.item(node, in: outcome.version.document))
            }
        }
    }

    private func moveRouteEndpoint() -> AdminEndpoint {
        let controller = self.controller
        return AdminEndpoint("POST", "/api/v1/routes/{route}/move", .configChange, "Move a route to another position (0 is first)", body: "Move", returns: "ChangeResult") { call throws(AdminError) in
            let body = try call.requireObject()
            guard let position = body["position"]?.intValue, position >= 0 else { throw .badRequest("'position' must be a whole number >= 0") }
            let route = call.parameter("route")
            let outcome = try await controller.change(call.changeRequest(target: "routes/\(route)")) { document throws(AdminError) in
                try NamedCollection.routes.moving(route, to: position, in: document)
            }
            return Self.changeReply(outcome, item: try NamedCollection.routes.item(route, in: outcome.version.document))
        }
    }

    /// Get, set and remove one policy field (health checks, limits, breakers) of a service or route.
    private func policyEndpoints(owner: String, parameter: String, collection: NamedCollection, policies: [String]) -> [AdminEndpoint] {
        let controller = self.controller
        let path = "\(owner)/policies/{policy}"
        let list = policies.joined(separator: ", ")
        @Sendable func policy(_ call: AdminCall) throws(AdminError) -> String {
            let name = call.parameter("policy")
            guard policies.contains(name) else { throw .notFound("there is no policy '\(name)' (there are: \(list))") }
            return name
        }
        @Sendable func set(_ call: AdminCall, _ value: ConfigDocument?) async throws(AdminError) -> AdminReply {
            let name = try policy(call)
            let owner = call.parameter(parameter)
            let outcome = try await controller.change(call.changeRequest(target: "\(collection.path[0])/\(owner)/policies/\(name)")) { document throws(AdminError) in
                try collection.patching(owner, with: .mapping([.init(name, value ?? .null)]), in: document)
            }
            let current = try collection.item(owner, in: outcome.version.document)[name] ?? .null
            return Self.changeReply(outcome, item: current)
        }
        return [
            AdminEndpoint("GET", path, .viewer, "One policy (\(list)); null when not set", returns: "AnyJSON") { call throws(AdminError) in
                let name = try policy(call)
                let active = await controller.active
                let item = try collection.item(call.parameter(parameter), in: active.document)
                return .json(item[name] ?? .null, version: active.number)
            },
            AdminEndpoint("PUT", path, .configChange, "Set one policy (\(list))", body: "AnyJSON", returns: "ChangeResult") { call throws(AdminError) in
                let body = try call.requireBody()
                guard body != .null else { throw .badRequest("to remove a policy, DELETE it") }
                return try await set(call, body)
            },
            AdminEndpoint("PATCH", path, .configChange, "Change fields of one policy (JSON merge patch)", body: "AnyJSON", returns: "ChangeResult") { call throws(AdminError) in
                let patch = try call.requireObject()
                let name = try policy(call)
                let current = try collection.item(call.parameter(parameter), in: await controller.active.document)[name]
                guard let current else { throw .notFound("the policy '\(name)' is not set; PUT it first") }
                return try await set(call, current.merged(with: patch))
            },
            AdminEndpoint("DELETE", path, .configChange, "Remove one policy (\(list))", returns: "ChangeResult") { call throws(AdminError) in
                try await set(call, nil)
            },
        ]
    }
}
