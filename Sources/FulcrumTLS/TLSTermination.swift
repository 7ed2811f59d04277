import FulcrumCore
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS on one listener: the context its connections' handshakes start from, and the certificates
/// they choose from, which a reload swaps at once (``install(_:)``). A handshake reads the
/// certificates in force when the client's hello arrives; connections already open keep the
/// certificate they were given.
///
/// The context itself carries only protocol settings (versions, cipher suites, ALPN) and a
/// placeholder certificate: the certificate of every handshake is chosen by SNI in BoringSSL's
/// certificate callback and given to that handshake alone.
public final class TLSTermination: Sendable {
    /// What handshakes choose from; read by BoringSSL's certificate callback.
    private let certificates: NIOLockedValueBox<ListenerCertificates>
    private let currentContext: NIOLockedValueBox<NIOSSLContext>

    /// What a TLS 1.2 client may choose on a listener: ECDHE key exchange with AES-128-GCM, one
    /// suite per key type (no RSA key exchange, no CBC). One, because swift-nio-ssl offers no
    /// switch for BoringSSL's server preference, so among several the client's order would decide
    /// (testssl rates that HIGH); with one per key type the server's choice is fixed. Every TLS 1.2
    /// client with ECDHE has AES-128-GCM (RFC 9113 requires it for HTTP/2); TLS 1.3 clients choose
    /// among AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 as usual.
    static let listenerTLS12CipherSuites = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"].joined(separator: ":")

    /// - Throws: when BoringSSL refuses the settings (it should not with certificates that loaded).
    public init(_ certificates: ListenerCertificates) throws {
        let box = NIOLockedValueBox(certificates)
        self.certificates = box
        self.currentContext = NIOLockedValueBox(try Self.makeContext(certificates, choosingFrom: box))
    }

    /// The context for a new connection's handshake.
    public var context: NIOSSLContext { currentContext.withLockedValue { $0 } }

    /// The certificates served now.
    public var served: ListenerCertificates { certificates.withLockedValue { $0 } }

    /// Serves `certificates` from the next handshake on. A change of ``ListenerTLS/minVersion``
    /// or ``ListenerTLS/alpn`` makes a new context for new connections.
    public func install(_ certificates: ListenerCertificates) throws {
        let previous = self.certificates.withLockedValue { current in
            defer { current = certificates }
            return current
        }
        if certificates.minVersion != previous.minVersion || certificates.alpn != previous.alpn {
            let context = try Self.makeContext(certificates, choosingFrom: self.certificates)
            currentContext.withLockedValue { $0 = context }
        }
    }

    private static func makeContext(
        _ certificates: ListenerCertificates, choosingFrom box: NIOLockedValueBox<ListenerCertificates>
    ) throws -> NIOSSLContext {
        guard let placeholder = certificates.certificates.first else { throw NoCertificateForName(serverName: nil) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: placeholder.chain.map { .certificate($0) }, privateKey: .privateKey(placeholder.privateKey))
        configuration.minimumTLSVersion = certificates.minVersion == .v1_3 ? .tlsv13 : .tlsv12
        configuration.cipherSuites = listenerTLS12CipherSuites
        configuration.applicationProtocols = certificates.alpn.map(\.rawValue)
        configuration.sslContextCallback = { values, promise in
            // on the connection's event loop, once per handshake, when the client's hello arrived
            guard let chosen = box.withLockedValue({ $0 }).certificate(for: values.serverHostname) else {
                promise.fail(NoCertificateForName(serverName: values.serverHostname))
                return
            }
            promise.succeed(chosen.handshakeOverride)
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// A client asked for a name no certificate of the listener has, and the listener has no default
/// certificate (or sent no name at all): its handshake is refused with an alert.
public struct NoCertificateForName: Error, CustomStringConvertible {
    public var serverName: String?
    public var description: String {
        serverName.map { "no certificate for '\($0)'" } ?? "no certificate for a client without SNI"
    }
}
