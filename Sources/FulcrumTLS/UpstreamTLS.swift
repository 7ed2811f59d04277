import FulcrumCore
import NIOCore
import NIOSSL
import NIOTLS

/// TLS to one node: the client context its connections start from (trusted roots, client
/// certificate), built once per configuration, and the name checked in the node's certificate.
/// Used by the proxy's connections to the node and by its active health probes alike, so that a
/// probe sees the node as requests do.
public final class UpstreamTLS: Sendable {
    public let settings: NodeTLS
    let context: NIOSSLContext
    /// The name sent in SNI and checked in the certificate; `nil` for a node addressed by IP
    /// without `server_name`, whose certificate is checked against the address connected to.
    let serverHostname: String?

    /// What Fulcrum offers a node in TLS 1.2, preferred first: ECDHE with AEAD only. As a client
    /// it offers more than it serves, so that a node limited to one of them is still reached.
    static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Builds the context for a node at `host` with `settings`; problems are reported against
    /// `path` (the node's `tls` field).
    ///
    /// - Throws: ``ConfigError`` naming `path.ca_file` or `path.client_certificate.cert|key` and why
    ///   the file cannot be used.
    public init(_ settings: NodeTLS, host: String, path: String) throws(ConfigError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = Self.tls12CipherSuites
        if settings.verify {
            configuration.certificateVerification = .fullVerification
            if let caFile = settings.caFile {
                func fail(_ message: String) -> ConfigError {
                    ConfigError(issues: [ConfigIssue(path: "\(path).ca_file", line: nil, message: message)])
                }
                let text: String
                do { text = try ServedCertificate.readFile(caFile) } catch { throw fail("cannot read '\(caFile)': \(error.reason)") }
                let roots = (try? NIOSSLCertificate.fromPEMBytes(Array(text.utf8))) ?? []
                guard !roots.isEmpty else { throw fail("'\(caFile)' holds no PEM certificate that can be read") }
                configuration.trustRoots = .certificates(roots)
            }
        } else {
            configuration.certificateVerification = .none
        }
        if let files = settings.clientCertificate {
            let certificate = try ServedCertificate(files: files, path: "\(path).client_certificate")
            configuration.certificateChain = certificate.chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(certificate.privateKey)
        }
        do { context = try NIOSSLContext(configuration: configuration) } catch {
            throw ConfigError(issues: [ConfigIssue(path: path, line: nil, message: "TLS settings refused: \(error)")])
        }
        self.settings = settings
        self.serverHostname = settings.serverName ?? (HTTPSyntax.isIPAddress(host) ? nil : host)
    }

    /// Adds TLS to a new connection's pipeline (first, before the handlers that read and write
    /// HTTP) and returns what completes once its handshake has: a connection is not given to an
    /// exchange before the node proved who it is, so a failed verification is a failure to
    /// connect (retried on another node, counted against this one) rather than a broken response.
    /// Connecting and the handshake together must be done within `timeout`. Called on the
    /// channel's event loop (in its initializer).
    public func addHandshake(to channel: Channel, timeout: TimeAmount) throws -> EventLoopFuture<Void> {
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        let watch = HandshakeWatch(handshake)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
        try sync.addHandler(watch)
        let timer = channel.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            watch.fail(UpstreamTLSFailure(reason: "no TLS handshake within \(timeout.nanoseconds / 1_000_000) ms"))
            channel.close(promise: nil)
        }
        handshake.futureResult.whenComplete { _ in timer.cancel() }
        return handshake.futureResult
    }
}

/// Completes its promise when the TLS handshake before it completes, fails it with the reason
/// when the handshake fails or the connection closes first, then leaves the pipeline.
final class HandshakeWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private var promise: EventLoopPromise<Void>?

    init(_ promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent, let promise {
            self.promise = nil
            promise.succeed()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let promise {
            self.promise = nil
            promise.fail(UpstreamTLSFailure(error))
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let promise {
            self.promise = nil
            promise.fail(UpstreamTLSFailure(reason: "the node closed the connection during the TLS handshake"))
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(UpstreamTLSFailure(reason: "the connection was closed during the TLS handshake"))
    }

    func fail(_ failure: UpstreamTLSFailure) {
        promise?.fail(failure)
        promise = nil
    }
}

/// Why a TLS handshake with a node failed, in words an operator can act on.
public struct UpstreamTLSFailure: Error, CustomStringConvertible {
    public var reason: String

    init(reason: String) {
        self.reason = reason
    }

    init(_ error: Error) {
        let text = "\(error)"
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            reason = "certificate verify failed: \(text)"
        } else if text.contains("CERTIFICATE_VERIFY_FAILED") {
            reason = "certificate verify failed (not signed by a trusted root, or expired): \(text)"
        } else {
            reason = text
        }
    }

    public var description: String { "TLS handshake failed: \(reason)" }
}
