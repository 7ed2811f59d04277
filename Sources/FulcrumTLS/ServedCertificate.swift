import Crypto
import Foundation
import FulcrumCore
import NIOSSL
import X509

/// A certificate a TLS listener presents: its chain and private key ready for BoringSSL, and what
/// an operator needs to know about it (names, subject, issuer, expiry, fingerprint). Read from
/// PEM files or an upload once per configuration; a key that does not belong to the certificate
/// is refused here, not at the first handshake.
public struct ServedCertificate: Sendable {
    /// The leaf certificate first, then its intermediates.
    public let chain: [NIOSSLCertificate]
    let privateKey: NIOSSLPrivateKey
    /// The DNS names the certificate is valid for (its subject alternative names; the subject's
    /// common name when it has none), as written, wildcards included.
    public let names: [String]
    public let subject: String
    public let issuer: String
    /// The end of the leaf certificate's validity, in seconds since 1970.
    public let notAfter: Int64
    /// SHA-256 of the leaf certificate's DER encoding, as colon-separated hex pairs.
    public let fingerprint: String
    /// SHA-256 of the whole chain's DER encoding (64 lowercase hex digits): what identifies an
    /// uploaded certificate in the store (``StoredCertificateReference/chainSHA256``). It is
    /// computed from public data only; the key is determined by the leaf it must match.
    public let chainSHA256: String
    /// Where it comes from.
    public let source: Source

    /// A certificate file of a listener, or a certificate uploaded through the admin API.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// The `cert` path of a listener's `tls.certificates` entry.
        case file(String)
        /// The name of a `stored_certificates` entry.
        case stored(String)

        public var description: String {
            switch self {
            case .file(let path): "'\(path)'"
            case .stored(let name): "stored certificate '\(name)'"
            }
        }
    }

    /// Reads `files`; problems are reported against `path` (the configuration field of the entry).
    ///
    /// - Throws: ``ConfigError`` naming `path.cert` or `path.key` and why the file cannot be used.
    public init(files: CertificateFiles, path: String) throws(ConfigError) {
        let certText: String
        let keyText: String
        do { certText = try Self.readFile(files.cert) } catch {
            throw Self.issue("\(path).cert", "cannot read '\(files.cert)': \(error.reason)")
        }
        do { keyText = try Self.readFile(files.key) } catch {
            throw Self.issue("\(path).key", "cannot read '\(files.key)': \(error.reason)")
        }
        try self.init(
            CertificateBundle(chainPEM: certText, keyPEM: keyText), source: .file(files.cert),
            certField: "\(path).cert", keyField: "\(path).key", certName: "'\(files.cert)'", keyName: "'\(files.key)'")
    }

    /// Reads an uploaded chain and key; problems are reported against `certField` and `keyField`
    /// (the fields of the upload, or of the `stored_certificates` entry).
    ///
    /// - Throws: ``ConfigError`` naming the field and why its PEM cannot be used (never quoting it).
    public init(bundle: CertificateBundle, name: String, certField: String, keyField: String) throws(ConfigError) {
        try self.init(bundle, source: .stored(name), certField: certField, keyField: keyField, certName: "the chain", keyName: "the key")
    }

    private init(
        _ bundle: CertificateBundle, source: Source, certField: String, keyField: String, certName: String, keyName: String
    ) throws(ConfigError) {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMBytes(Array(bundle.chainPEM.utf8)) } catch {
            throw Self.issue(certField, "\(certName) holds no PEM certificate that can be read")
        }
        guard let leafBytes = try? chain.first?.toDERBytes(), let leaf = try? Certificate(derEncoded: leafBytes) else {
            throw Self.issue(certField, "\(certName) holds no PEM certificate that can be read")
        }
        let key: Certificate.PrivateKey
        let sslKey: NIOSSLPrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: bundle.keyPEM)
            sslKey = try NIOSSLPrivateKey(bytes: Array(bundle.keyPEM.utf8), format: .pem)
        } catch {
            throw Self.issue(keyField, "\(keyName) holds no PEM private key that can be read (RSA or ECDSA, unencrypted)")
        }
        guard key.publicKey == leaf.publicKey else {
            throw Self.issue(keyField, "\(keyName) is not the private key of the certificate in \(certName)")
        }
        var names: [String] = []
        if let alternatives = try? leaf.extensions.subjectAlternativeNames {
            for name in alternatives { if case .dnsName(let dns) = name { names.append(dns) } }
        }
        if names.isEmpty {
            for attribute in leaf.subject.flatMap({ $0 }) where attribute.type == .RDNAttributeType.commonName {
                names.append(String(describing: attribute.value))
            }
        }
        var chainHash = SHA256()
        for certificate in chain { if let der = try? certificate.toDERBytes() { chainHash.update(data: der) } }
        self.chain = chain
        self.privateKey = sslKey
        self.names = names
        self.subject = leaf.subject.description
        self.issuer = leaf.issuer.description
        self.notAfter = Int64(leaf.notValidAfter.timeIntervalSince1970)
        self.fingerprint = Self.hex(SHA256.hash(data: leafBytes), separator: ":", uppercase: true)
        self.chainSHA256 = Self.hex(chainHash.finalize(), separator: "", uppercase: false)
        self.source = source
    }

    private static func issue(_ field: String, _ message: String) -> ConfigError {
        ConfigError(issues: [ConfigIssue(path: field, line: nil, message: message)])
    }

    private static func hex(_ digest: SHA256.Digest, separator: String, uppercase: Bool) -> String {
        digest.map { byte in
            let hex = String(byte, radix: 16, uppercase: uppercase)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: separator)
    }

    /// What replaces the listener's placeholder certificate in a handshake that chose this one.
    var handshakeOverride: NIOSSLContextConfigurationOverride {
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(privateKey)
        return override
    }

    /// A file that cannot be read, with the system's reason ("No such file or directory",
    /// "Permission denied"), which Foundation's errors word differently on each platform.
    struct ReadError: Error {
        var reason: String
    }

    static func readFile(_ path: String) throws(ReadError) -> String {
        guard let file = fopen(path, "r") else { throw ReadError(reason: String(cString: strerror(errno))) }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count {
                if ferror(file) != 0 { throw ReadError(reason: String(cString: strerror(errno))) }
                break
            }
            if bytes.count > 1 << 20 { throw ReadError(reason: "larger than 1 MiB, which no certificate chain or key is") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
