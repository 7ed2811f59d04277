@preconcurrency import Crypto
import Foundation
import X509
import _CryptoExtras

/// A certificate authority made for one test, and certificates it issues, written as PEM files
/// into a temporary folder: real certificates for real TLS handshakes, with no file of them kept.
public struct TestCertificateAuthority: Sendable {
    public let folder: URL
    private let key: P256.Signing.PrivateKey
    private let name: DistinguishedName
    public let certificate: Certificate

    /// The CA certificate's PEM file (a client's trust root).
    public var certificatePath: String { folder.appendingPathComponent("ca.pem").path }

    public init(name commonName: String = "Fulcrum Test CA") throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        key = P256.Signing.PrivateKey()
        name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 365 * 86_400, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(key))
        try certificate.serializeAsPEM().pemString.write(toFile: certificatePath, atomically: true, encoding: .utf8)
    }

    public enum KeyKind: Sendable { case ecdsa, rsa }

    /// Issues a server certificate for `names` and writes it (`file`.pem) and its key (`file`.key);
    /// returns both paths.
    @discardableResult
    public func issue(
        _ file: String, names: [String], key kind: KeyKind = .ecdsa, validFor days: Double = 90, expiredDaysAgo: Double? = nil
    ) throws -> (cert: String, key: String) {
        let publicKey: Certificate.PublicKey
        let keyPEM: String
        switch kind {
        case .ecdsa:
            let leafKey = P256.Signing.PrivateKey()
            publicKey = .init(leafKey.publicKey)
            keyPEM = leafKey.pemRepresentation
        case .rsa:
            let leafKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            publicKey = .init(leafKey.publicKey)
            keyPEM = leafKey.pemRepresentation
        }
        let now = Date()
        let notAfter = expiredDaysAgo.map { now - $0 * 86_400 } ?? now + days * 86_400
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: notAfter - (days + 30) * 86_400, notValidAfter: notAfter, issuer: name,
            subject: try DistinguishedName { CommonName(names.first ?? file) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames(names.map { GeneralName.dnsName($0) })
                try ExtendedKeyUsage([.serverAuth, .clientAuth])  // also usable as a client certificate (mutual TLS)
            },
            issuerPrivateKey: .init(key))
        let certPath = folder.appendingPathComponent("\(file).pem").path
        let keyPath = folder.appendingPathComponent("\(file).key").path
        try leaf.serializeAsPEM().pemString.write(toFile: certPath, atomically: true, encoding: .utf8)
        try keyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
        return (certPath, keyPath)
    }

    public func remove() {
        try? FileManager.default.removeItem(at: folder)
    }
}
