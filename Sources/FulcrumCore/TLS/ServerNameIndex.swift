/// Chooses the certificate for a TLS handshake from the server name the client asked for (SNI):
/// a certificate with that exact name first, then one with a wildcard for it, then the listener's
/// default certificate, and otherwise none (the handshake is refused).
///
/// Names compare case-insensitively, and a wildcard covers exactly one leftmost label, as for
/// certificate verification (RFC 6125, 6.4.3): `*.example.com` serves `api.example.com`, but
/// neither `example.com` nor `a.b.example.com`. A name that two certificates share goes to the
/// first one listed. Built once per configuration; a lookup lowercases the name into a string
/// and reads two dictionaries.
public struct ServerNameIndex: Sendable, Equatable {
    private var exact: [String: Int] = [:]
    /// By the part after `*.`: `example.com` for `*.example.com`.
    private var wildcards: [String: Int] = [:]
    /// The certificate for clients without SNI or with a name no certificate has.
    public let defaultIndex: Int?

    /// - Parameters:
    ///   - names: each certificate's DNS names (its subject alternative names), in listing order.
    ///   - defaultIndex: the certificate for other names, if any.
    public init(names: [[String]], defaultIndex: Int?) {
        self.defaultIndex = defaultIndex
        for (index, certificateNames) in names.enumerated() {
            for name in certificateNames {
                let name = name.lowercased()
                if name.hasPrefix("*.") {
                    let suffix = String(name.dropFirst(2))
                    if wildcards[suffix] == nil { wildcards[suffix] = index }
                } else if exact[name] == nil {
                    exact[name] = index
                }
            }
        }
    }

    /// The index of the certificate to present to a client that asked for `serverName` (`nil`
    /// when it sent no SNI), or `nil` to refuse the handshake.
    public func certificate(for serverName: String?) -> Int? {
        guard let serverName, !serverName.isEmpty else { return defaultIndex }
        let name = serverName.lowercased()
        if let index = exact[name] { return index }
        if let dot = name.firstIndex(of: "."), dot > name.startIndex, let index = wildcards[String(name[name.index(after: dot)...])] {
            return index
        }
        return defaultIndex
    }
}
