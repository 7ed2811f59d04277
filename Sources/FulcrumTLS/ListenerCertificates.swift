import FulcrumCore

/// The certificates of one TLS listener in one configuration, and the index that chooses among
/// them by server name. Immutable: a reload reads the files again into a new one.
///
/// The stored certificates (uploaded through the admin API) come first: an upload for a name
/// takes that name over from a file certificate that also has it, which is what an operator who
/// uploads a renewal expects.
public struct ListenerCertificates: Sendable {
    public let certificates: [ServedCertificate]
    let index: ServerNameIndex
    /// The oldest protocol version accepted.
    public let minVersion: TLSVersion
    /// The application protocols offered in ALPN, preferred first.
    public let alpn: [ApplicationProtocol]

    /// Reads every certificate file of `tls` and serves them after `stored`; problems are
    /// reported against `path` (`listen[0].tls`).
    ///
    /// - Throws: ``ConfigError`` with an issue for every certificate that cannot be used.
    public init(_ tls: ListenerTLS, stored: [ServedCertificate], path: String) throws(ConfigError) {
        var loaded: [ServedCertificate] = stored
        var issues: [ConfigIssue] = []
        for (position, files) in tls.certificates.enumerated() {
            do { loaded.append(try ServedCertificate(files: files, path: "\(path).certificates[\(position)]")) } catch {
                issues.append(contentsOf: error.issues)
            }
        }
        if loaded.isEmpty, issues.isEmpty {
            issues.append(ConfigIssue(
                path: "\(path).certificates", line: nil,
                message: "no certificate to serve: list one, or upload one through the admin API (with a store)"))
        }
        guard issues.isEmpty else { throw ConfigError(issues: issues) }
        self.certificates = loaded
        let defaultIndex = tls.defaultIndex.map { stored.count + $0 }
            ?? tls.defaultCertificate.flatMap { name in stored.firstIndex { $0.source == .stored(name) } }
        self.index = ServerNameIndex(names: loaded.map(\.names), defaultIndex: defaultIndex)
        self.minVersion = tls.minVersion
        self.alpn = tls.alpn
    }

    /// The certificate for a client that asked for `serverName`, or `nil` to refuse it.
    public func certificate(for serverName: String?) -> ServedCertificate? {
        index.certificate(for: serverName).map { certificates[$0] }
    }

    /// How long before its expiry a served certificate is warned about (by `check`, and in the
    /// log at start and daily).
    public static let warningDays: Int64 = 30

    /// Where a certificate stands in its validity, as the admin API reports it.
    public enum ExpiryState: String, CaseIterable, Sendable {
        case valid
        /// Within ``ListenerCertificates/warningDays`` of its end: warned about.
        case expiring
        case expired

        /// The state of a certificate with `secondsLeft` of validity (negative once expired).
        public init(secondsLeft: Int64) {
            self = secondsLeft <= 0 ? .expired : secondsLeft < ListenerCertificates.warningDays * 86_400 ? .expiring : .valid
        }
    }

    /// The certificates that expired or expire within ``warningDays`` at `now` (seconds since
    /// 1970). They are still served: refusing to start would not help the clients.
    public func expiring(now: Int64) -> [(certificate: ServedCertificate, secondsLeft: Int64)] {
        certificates.compactMap { certificate in
            let left = certificate.notAfter - now
            return ExpiryState(secondsLeft: left) == .valid ? nil : (certificate, left)
        }
    }

    /// The expiring certificate files of the listener at `path` (`listen[0].tls`), as warnings on
    /// their fields. The stored certificates every listener also serves are warned
    /// about once, on their own field (``expiryWarning(_:secondsLeft:field:)``).
    public func expiryWarnings(now: Int64, path: String) -> [ConfigIssue] {
        let files = certificates.filter { if case .file = $0.source { true } else { false } }
        return files.enumerated().compactMap { position, certificate in
            let left = certificate.notAfter - now
            guard ExpiryState(secondsLeft: left) != .valid else { return nil }
            return Self.expiryWarning(certificate, secondsLeft: left, field: "\(path).certificates[\(position)].cert")
        }
    }

    /// The warning that `certificate` (at configuration field `field`) expired or expires soon.
    public static func expiryWarning(_ certificate: ServedCertificate, secondsLeft left: Int64, field: String) -> ConfigIssue {
        let message = left <= 0
            ? "\(certificate.source) expired \((-left) / 86_400) days ago"
            : "\(certificate.source) expires in \(left / 86_400) days"
        return ConfigIssue(path: field, line: nil, message: message)
    }
}
