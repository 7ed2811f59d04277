import FulcrumCore

extension AdminContext {
    /// A route's rollout: its state, and pause, resume, promote, abort.
    func rolloutEndpoints() -> [AdminEndpoint] {
        let controller = self.controller
        let rollouts = self.rollouts
        @Sendable func figures(_ figures: RolloutStep.Figures) -> ConfigDocument {
            .mapping([
                .init("requests", .int(figures.requests)), .init("error_ratio", AdminDocuments.decimal(figures.errorRatio)),
                .init("p99_ms", AdminDocuments.milliseconds(figures.p99Microseconds)),
            ])
        }
        let actions: [(String, String)] = [
            ("pause", "Pause the rollout: its weights stay"), ("resume", "Resume a paused rollout (its step starts over)"),
            ("promote", "End the rollout now: the canary becomes the route's target"),
            ("abort", "End the rollout now: the canary gets no more traffic and leaves the route"),
        ]
        return [
            AdminEndpoint("GET", "/api/v1/routes/{route}/rollout", .viewer, "The route's rollout: settings, current weight and the last verdict with the figures", returns: "Rollout") { call throws(AdminError) in
                let route = try NamedCollection.routes.item(call.parameter("route"), in: await controller.active.document)
                guard let settings = route["split"]?["rollout"] else { throw .notFound("route '\(call.parameter("route"))' has no rollout") }
                var document = ConfigDocument.mapping([.init("settings", settings), .init("targets", route["split"]?["targets"] ?? .list([]))])
                if let status = await rollouts.status(route: call.parameter("route")) {
                    document["status"] = .mapping([
                        .init("canary_weight", .int(status.canaryWeight)), .init("step_seconds", AdminDocuments.decimal(status.stepSeconds)),
                        .init("verdict", .string(status.verdict)), .init("canary", figures(status.canary)), .init("baseline", figures(status.baseline)),
                    ])
                }
                return .json(document)
            },
        ] + actions.map { action, summary in
            AdminEndpoint("POST", "/api/v1/routes/{route}/rollout/\(action)", .configChange, summary, returns: "ChangeResult") { call throws(AdminError) in
                let route = call.parameter("route")
                var request = call.changeRequest(target: "routes/\(route)/rollout")
                if request.message.isEmpty { request.message = "rollout \(action) by \(request.actor)" }
                let outcome = try await controller.change(request, urgent: action == "abort") { document throws(AdminError) in
                    switch action {
                    case "pause": return try RolloutEdit.setPaused(true, route: route, in: document)
                    case "resume": return try RolloutEdit.setPaused(false, route: route, in: document)
                    case "promote": return try RolloutEdit.finish(route: route, keep: .canary, in: document)
                    default: return try RolloutEdit.finish(route: route, keep: .baseline, in: document)
                    }
                }
                return AdminContext.changeReply(outcome)
            }
        }
    }
}
