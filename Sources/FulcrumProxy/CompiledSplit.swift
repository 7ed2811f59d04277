import FulcrumCore

/// A route's traffic split resolved against its configuration: the service and node group of each
/// target, and the `Set-Cookie` value that keeps a browser on it.
final class CompiledSplit: Sendable {
    let decider: SplitDecider
    /// The service index of each target.
    let services: [Int]
    /// For targets limited to tagged nodes: which of the service's nodes belong; `nil`: all.
    let groups: [[Bool]?]
    /// `Set-Cookie` per target, when the split has a sticky cookie.
    let cookies: [String?]

    init?(route: Route, config: FulcrumConfig) {
        guard let split = route.split else { return nil }
        decider = SplitDecider(split: split)
        var services: [Int] = []
        var groups: [[Bool]?] = []
        for target in split.targets {
            let index = config.services.firstIndex { $0.name == target.service } ?? 0
            services.append(index)
            groups.append(target.tags.isEmpty ? nil : config.services[index].nodes.map { node in target.tags.allSatisfy(node.tags.contains) })
        }
        self.services = services
        self.groups = groups
        cookies = split.targets.map { target in
            split.stickyCookie.map { "\($0.name)=\(target.name); Path=/; Max-Age=\($0.maxAge.components.seconds); HttpOnly; SameSite=Lax" }
        }
    }
}
