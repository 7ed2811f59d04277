import Crypto
import Foundation
import FulcrumCore
import NIOSSL
import X509

/// A certificate a TLS listener presents: its chain and private key ready for BoringSSL, and what
/// an operator needs to know about it (names, subject, issuer, expiry, fingerprint). Read from
/// PEM files once per configuration; a key that does not belong to the certificate is refused
/// here, not at the first handshake.
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
    /// The `cert` file it was read from.
    public let certPath: String

    /// Reads `files`; problems are reported against `path` (the configuration field of the entry).
    ///
    /// - Throws: ``ConfigError`` naming `path.cert` or `path.key` and why the file cannot be used.
    public init(files: CertificateFiles, path: String) throws(ConfigError) {
        func fail(_ field: String, _ message: String) -> ConfigError {
            ConfigError(issues: [ConfigIssue(path: "\(path).\(field)", line: nil, message: message)])
        }
        let certText: String
        let keyText: String
        do { certText = try Self.readFile(files.cert) } catch {
            throw fail("cert", "cannot read '\(files.cert)': \(error.reason)")
        }
        do { keyText = try Self.readFile(files.key) } catch {
            throw fail("key", "cannot read '\(files.key)': \(error.reason)")
        }
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMBytes(Array(certText.utf8)) } catch {
            throw fail("cert", "'\(files.cert)' holds no PEM certificate that can be read")
        }
        guard let leafBytes = try? chain.first?.toDERBytes(), let leaf = try? Certificate(derEncoded: leafBytes) else {
            throw fail("cert", "'\(files.cert)' holds no PEM certificate that can be read")
        }
        let key: Certificate.PrivateKey
        let sslKey: NIOSSLPrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyText)
            sslKey = try NIOSSLPrivateKey(bytes: Array(keyText.utf8), format: .pem)
        } catch {
            throw fail("key", "'\(files.key)' holds no PEM private key that can be read (RSA or ECDSA, unencrypted)")
        }
        guard key.publicKey == leaf.publicKey else {
            throw fail("key", "'\(files.key)' is not the private key of the certificate in '\(files.cert)'")
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
        self.chain = chain
        self.privateKey = sslKey
        self.names = names
        self.subject = leaf.subject.description
        self.issuer = leaf.issuer.description
        self.notAfter = Int64(leaf.notValidAfter.timeIntervalSince1970)
        self.fingerprint = SHA256.hash(data: leafBytes).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
        self.certPath = files.cert
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
