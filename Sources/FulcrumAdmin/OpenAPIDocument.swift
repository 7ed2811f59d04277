import FulcrumCore
import FulcrumStore
import FulcrumTLS

/// The OpenAPI 3.0 document of the admin API, built from the endpoint table (so every operation
/// the server answers is in it, with its parameters) and the schemas below.
enum OpenAPIDocument {
    static func build(_ endpoints: [AdminEndpoint]) -> ConfigDocument {
        var paths: [ConfigDocument.Member] = []
        for endpoint in endpoints {
            let path = endpoint.template.description
            let operation = Self.operation(endpoint)
            if let index = paths.firstIndex(where: { $0.key == path }) {
                paths[index].value[endpoint.method.lowercased()] = operation
            } else {
                paths.append(.init(path, .mapping([.init(endpoint.method.lowercased(), operation)])))
            }
        }
        return .mapping([
            .init("openapi", .string("3.0.3")),
            .init("info", .mapping([
                .init("title", .string("Fulcrum admin API")), .init("version", .string(FulcrumBuild.version)),
                .init("description", .string(
                    "Changes are validated, stored as a new configuration version and applied without a restart. "
                        + "Changes need If-Match with the version they are based on (or *). Errors are JSON with a code and a message.")),
            ])),
            .init("security", .list([.mapping([.init("bearer", .list([]))])])),
            .init("paths", .mapping(paths)),
            .init("components", .mapping([
                .init("securitySchemes", .mapping([.init("bearer", object(["type": .string("http"), "scheme": .string("bearer")]))])),
                .init("schemas", .mapping(schemas.map { .init($0.0, $0.1) })),
            ])),
        ])
    }

    private static func operation(_ endpoint: AdminEndpoint) -> ConfigDocument {
        let path = endpoint.template.description
        var parameters: [ConfigDocument] = endpoint.template.parameterNames.map { name in
            let schema: ConfigDocument
            switch name {
            case "version": schema = object(["type": .string("integer"), "minimum": .int(1)])
            case "policy": schema = ref(path.hasPrefix("/api/v1/services/") ? "ServicePolicy" : "RoutePolicy")
            case "setting": schema = ref("Setting")
            default: schema = object(["type": .string("string")])
            }
            return object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": schema])
        }
        parameters += endpoint.query.map { parameter in
            object([
                "name": .string(parameter.name), "in": .string("query"), "required": .bool(false),
                "description": .string(parameter.description), "schema": object(["type": .string(parameter.type)]),
            ])
        }
        if endpoint.access == .configChange {
            parameters.append(object([
                "name": .string("If-Match"), "in": .string("header"), "required": .bool(true),
                "description": .string("The version the change is based on, as \"12\", or * for whatever is active."),
                "schema": object(["type": .string("string"), "pattern": .string(#"^(\*|(W/)?"[1-9][0-9]{0,8}")$"#)]),
            ]))
        }
        var operation = ConfigDocument.mapping([
            .init("summary", .string(endpoint.summary)),
            .init("operationId", .string(operationID(endpoint))),
        ])
        if !parameters.isEmpty { operation["parameters"] = .list(parameters) }
        if let body = endpoint.body {
            operation["requestBody"] = object([
                "required": .bool(true), "content": object(["application/json": object(["schema": ref(body)])]),
            ])
        }
        let content: ConfigDocument
        switch endpoint.returns {
        case "YAML": content = object(["application/yaml": object(["schema": ref("Config")])])
        case "Metrics": content = object(["text/plain": object(["schema": object(["type": .string("string")])])])
        default: content = object(["application/json": object(["schema": ref(endpoint.returns)])])
        }
        operation["responses"] = .mapping([
            .init(String(endpoint.status), object(["description": .string("Success"), "content": content])),
            .init("default", object([
                "description": .string("A refusal or an error"),
                "content": object(["application/json": object(["schema": ref("Error")])]),
            ])),
        ])
        if endpoint.access == .open { operation["security"] = .list([]) }
        return operation
    }

    /// e.g. `patchServicesServiceNodesNode`.
    private static func operationID(_ endpoint: AdminEndpoint) -> String {
        var id = endpoint.method.lowercased()
        for segment in endpoint.template.segments {
            let word: String
            switch segment {
            case .literal(let text): word = text
            case .parameter(let name): word = "by_" + name
            }
            if word == "api" || word == "v1" { continue }
            for part in word.split(whereSeparator: { !$0.isLetter && !$0.isNumber }) { id += part.prefix(1).uppercased() + part.dropFirst() }
        }
        return id
    }

    // MARK: schemas

    private static func object(_ members: KeyValuePairs<String, ConfigDocument>) -> ConfigDocument {
        .mapping(members.map { .init($0.key, $0.value) })
    }

    private static func ref(_ name: String) -> ConfigDocument { object(["$ref": .string("#/components/schemas/\(name)")]) }
    private static let string = object(["type": .string("string")])
    private static let integer = object(["type": .string("integer")])
    private static let number = object(["type": .string("number")])
    private static let boolean = object(["type": .string("boolean")])
    private static let anything = object(["nullable": .bool(true)])
    private static let freeObject = object(["type": .string("object"), "additionalProperties": .bool(true)])

    private static func nullable(_ type: String) -> ConfigDocument { object(["type": .string(type), "nullable": .bool(true)]) }
    private static func array(_ items: ConfigDocument) -> ConfigDocument { object(["type": .string("array"), "items": items]) }

    /// An object with these properties, all of them required unless listed in `optional`.
    private static func record(_ properties: KeyValuePairs<String, ConfigDocument>, optional: [String] = []) -> ConfigDocument {
        object([
            "type": .string("object"),
            "properties": .mapping(properties.map { .init($0.key, $0.value) }),
            "required": .list(properties.map(\.key).filter { !optional.contains($0) }.map(ConfigDocument.string)),
        ])
    }

    private static let byClass = record(["1xx": integer, "2xx": integer, "3xx": integer, "4xx": integer, "5xx": integer])
    private static let limitState = object([
        "type": .string("object"), "nullable": .bool(true),
        "properties": object(["rejected": integer, "tracked_keys": integer]), "required": .list([.string("rejected"), .string("tracked_keys")]),
    ])

    /// A string that is one of `values` (taken from the configuration model's own lists, so that
    /// clients reading this document, the console first, offer exactly what the parser accepts).
    private static func oneOf(_ values: [String], _ description: String) -> ConfigDocument {
        object(["type": .string("string"), "enum": .list(values.map(ConfigDocument.string)), "description": .string(description)])
    }

    /// The configuration's enumerations.
    static let vocabulary: [(String, ConfigDocument)] = [
        ("Strategy", oneOf(BalancingStrategy.Kind.allCases.map(\.rawValue), "services.NAME.strategy: how a service picks a node")),
        ("RateLimitAlgorithm", oneOf(RateLimit.Algorithm.Kind.allCases.map(\.rawValue), "rate_limit.algorithm")),
        ("WhenNoNode", oneOf(NoNodePolicy.allCases.map(\.rawValue), "services.NAME.when_no_node: what happens when no node is usable")),
        ("HealthCheckType", oneOf(ActiveHealthCheck.Kind.allCases.map(\.rawValue), "health_check.type")),
        ("EncodedSlashes", oneOf(RequestTarget.EncodedSlashes.allCases.map(\.rawValue), "encoded_slashes: what a %2F in a path does")),
        ("ServicePolicy", oneOf(AdminContext.servicePolicies, "the policies of a service, each at /api/v1/services/{service}/policies/{policy}")),
        ("RoutePolicy", oneOf(AdminContext.routePolicies, "the policies of a route, each at /api/v1/routes/{route}/policies/{policy}")),
        ("Setting", oneOf(PolicySchemas.settings, "the top-level settings, each at /api/v1/settings/{setting}")),
        ("RouteAction", oneOf(PolicySchemas.routeActions, "what a route may do instead of proxying, a field of the route")),
        ("PolicySchemas", PolicySchemas.document),
    ]

    static let schemas: [(String, ConfigDocument)] = vocabulary + [
        ("Error", record([
            "error": record([
                "code": string, "message": string, "issues": array(ref("Issue")), "active_version": integer,
            ], optional: ["issues", "active_version"]),
        ])),
        ("Issue", record(["path": string, "line": nullable("integer"), "message": string])),
        ("Health", record(["status": string])),
        ("Certificate", record([
            "listener": object(["type": .string("string"), "nullable": .bool(true), "description": .string(
                "The TLS listener (address:port) serving it; null for a stored certificate no TLS listener serves.")]),
            "source": object(["type": .string("string"), "enum": .list([.string("file"), .string("stored")])]),
            "file": nullable("string"), "stored_name": nullable("string"),
            "names": array(string), "subject": string, "issuer": string,
            "not_after": object(["type": .string("string"), "format": .string("date-time")]),
            "days_left": object(["type": .string("integer"), "description": .string("Whole days until not_after; negative once expired.")]),
            "state": object([
                "type": .string("string"), "enum": .list(ListenerCertificates.ExpiryState.allCases.map { .string($0.rawValue) }),
                "description": .string(
                    "expiring: within the \(ListenerCertificates.warningDays) days before not_after, when Fulcrum warns in its log."),
            ]),
            "fingerprint": object(["type": .string("string"), "description": .string("SHA-256 of the DER certificate, colon-separated hex.")]),
        ])),
        ("CertificateList", record(["items": array(ref("Certificate"))])),
        ("Instance", record([
            "id": string, "host_name": string, "listen": array(string), "fulcrum_version": string,
            "started_at": object(["type": .string("string"), "format": .string("date-time")]), "applied_version": integer,
            "last_error": nullable("string"), "heartbeat_at": object(["type": .string("string"), "format": .string("date-time")]),
            "state": object([
                "type": .string("string"), "enum": .list(InstanceState.allCases.map { .string($0.rawValue) }),
                "description": .string("gone: no heartbeat for \(Int(InstanceState.goneAfter)) s; failing: cannot apply the active version (last_error)."),
            ]),
        ])),
        ("InstanceList", record(["active_version": nullable("integer"), "items": array(ref("Instance"))])),
        ("CertificateUpload", object([
            "type": .string("object"), "additionalProperties": .bool(false), "required": .list([.string("cert"), .string("key")]),
            "properties": object([
                "cert": object(["type": .string("string"), "description": .string("The chain as PEM: the leaf certificate first, then its intermediates.")]),
                "key": object(["type": .string("string"), "description": .string("The leaf's private key as PEM (RSA or ECDSA, unencrypted). Stored only in the store file; never returned.")]),
            ]),
        ])),
        ("AnyJSON", anything),
        ("Config", object([
            "type": .string("object"), "additionalProperties": .bool(true),
            "description": .string("A whole configuration, as in the configuration file (see the README's reference)."),
        ])),
        ("Item", object([
            "type": .string("object"), "additionalProperties": .bool(true), "properties": object(["name": string]),
            "description": .string("A service, node or route as in the configuration file, with its name."),
        ])),
        ("ItemList", record(["items": array(ref("Item"))])),
        ("Move", record(["position": object(["type": .string("integer"), "minimum": .int(0)])])),
        ("VersionSummary", record([
            "number": integer, "created_at": object(["type": .string("string"), "format": .string("date-time")]), "actor": string,
            "source": object(["type": .string("string"), "enum": .list(ChangeSource.allCases.map { .string($0.rawValue) })]),
            "message": string, "based_on": nullable("integer"), "active": boolean,
        ])),
        ("Version", object(["allOf": .list([
            ref("VersionSummary"), record(["config": ref("Config")]),
        ])])),
        ("VersionList", record(["items": array(ref("VersionSummary"))])),
        ("Change", record(["path": string, "before": anything, "after": anything])),
        ("ChangeResult", record([
            "version": ref("VersionSummary"), "created": boolean, "changes": array(ref("Change")), "item": anything,
        ], optional: ["item"])),
        ("Diff", record(["from": integer, "to": integer, "changes": array(ref("Change")), "from_yaml": string, "to_yaml": string])),
        ("Validation", record(["valid": boolean, "issues": array(ref("Issue"))])),
        ("ExplainRequest", object([
            "type": .string("object"), "additionalProperties": .bool(false), "required": .list([.string("path")]),
            "properties": object([
                "method": string, "path": object(["type": .string("string"), "pattern": .string("^/")]),
                "headers": object(["type": .string("object"), "additionalProperties": string]),
                "cookies": object(["type": .string("object"), "additionalProperties": string]), "client_ip": string, "body": string,
            ]),
        ])),
        ("RouteReport", record([
            "request": string,
            "steps": array(record(["route": string, "path_kind": string, "matched": boolean, "verdict": string])),
            "status": nullable("integer"), "route": nullable("string"), "split": nullable("string"), "service": nullable("string"),
            "strategy": nullable("string"),
            "node": nullable("string"), "node_reason": nullable("string"),
            "response": nullable("string"), "shaping": array(string), "access": array(string),
        ])),
        ("State", record([
            "version": integer,
            "services": array(record([
                "name": string,
                "nodes": array(record(["name": string, "up": boolean, "ejected_for_seconds": nullable("number"), "in_flight": integer])),
                "breakers": array(string), "rate_limit": limitState, "limited_in_flight": nullable("integer"),
            ])),
            "routes": array(record(["name": string, "rate_limit": limitState, "limited_in_flight": nullable("integer")])),
            "access_rules": array(record(["name": string, "scope": string, "action": string, "hits": integer])),
            "cc": array(record(["name": string, "bans": integer, "refused": integer])),
            "bans": array(ref("Ban")),
        ])),
        ("Ban", record(["rule": string, "key": string, "seconds_left": number])),
        ("BanLifted", record(["lifted": ref("Ban")])),
        ("Traffic", record([
            "name": string, "service": string, "connect_errors": integer, "in_flight": integer,
            "total": record(["requests": integer, "by_class": byClass, "request_bytes": integer, "response_bytes": integer]),
            "window": record([
                "requests": integer, "rps": number, "by_class": byClass, "error_ratio": number,
                "p50_ms": nullable("number"), "p90_ms": nullable("number"), "p99_ms": nullable("number"),
            ]),
            "series": array(record(["requests": integer, "errors": integer, "p50_ms": nullable("number"), "p99_ms": nullable("number")])),
        ], optional: ["service", "connect_errors", "in_flight", "series"])),
        ("Stats", record([
            "version": integer, "seconds": integer, "routes": array(ref("Traffic")), "services": array(ref("Traffic")), "nodes": array(ref("Traffic")),
        ])),
        ("AuditEntry", record([
            "sequence": integer, "time": object(["type": .string("string"), "format": .string("date-time")]), "actor": string,
            "client": string, "operation": string, "target": string, "result": string, "detail": string,
            "version": nullable("integer"), "hash": string,
        ])),
        ("Rollout", record([
            "settings": freeObject, "targets": array(freeObject),
            "status": record([
                "canary_weight": integer, "step_seconds": number, "verdict": string,
                "canary": record(["requests": integer, "error_ratio": number, "p99_ms": nullable("number")]),
                "baseline": record(["requests": integer, "error_ratio": number, "p99_ms": nullable("number")]),
            ]),
        ], optional: ["status"])),
        ("ProbeHistory", record([
            "items": array(record(["time": object(["type": .string("string"), "format": .string("date-time")]), "success": boolean, "detail": string])),
        ])),
        ("AuditPage", record(["items": array(ref("AuditEntry")), "next_before": nullable("integer")])),
        ("AuditVerification", record([
            "intact": boolean, "entries": integer, "first_broken": nullable("integer"), "problem": nullable("string"), "head_hash": string,
        ])),
        ("Token", record([
            "name": string, "role": object(["type": .string("string"), "enum": .list(TokenRole.allCases.map { .string($0.rawValue) })]),
            "created_at": object(["type": .string("string"), "format": .string("date-time")]),
        ])),
        ("TokenList", record(["items": array(ref("Token"))])),
        ("TokenRequest", record([
            "name": object(["type": .string("string"), "pattern": .string("^[A-Za-z0-9._-]{1,64}$")]),
            "role": object(["type": .string("string"), "enum": .list(TokenRole.allCases.map { .string($0.rawValue) })]),
        ])),
        ("NewToken", object(["allOf": .list([ref("Token"), record(["secret": string])])])),
        ("Revoked", record(["revoked": string])),
    ]
}
