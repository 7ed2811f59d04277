import Foundation
import FulcrumCore

/// A local copy of the configuration an instance applied last, with the chains and keys of the
/// certificates it names: what an instance of a fleet starts from when its shared store cannot be
/// reached at start. Written after every version it applies, to a temporary file that is synced
/// and renamed over the copy (a crash leaves the old copy or the new one, never half of one), and
/// readable by its owner only, as it holds private keys.
public enum LastKnownGood {
    /// The copy cannot be written or read back.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func write(_ version: ConfigVersion, bundles: [String: CertificateBundle], to path: String) throws(Failure) {
        let document = ConfigDocument.mapping([
            .init("version", .int(version.number)), .init("created_at", .int(Int(AuditChain.milliseconds(version.createdAt)))),
            .init("actor", .string(version.actor)), .init("source", .string(version.source.rawValue)),
            .init("message", .string(version.message)), .init("based_on", version.basedOn.map(ConfigDocument.int) ?? .null),
            .init("config", version.document),
            .init("certificates", .mapping(bundles.sorted { $0.key < $1.key }.map { digest, bundle in
                .init(digest, .mapping([.init("chain", .string(bundle.chainPEM)), .init("key", .string(bundle.keyPEM))]))
            })),
        ])
        let bytes = Array(document.jsonText().utf8)
        let temporary = "\(path).tmp-\(getpid())"
        let descriptor = open(temporary, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                unlink(temporary)
                throw Failure(description: "cannot write \(temporary): \(reason)")
            }
            written += count
        }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard synced, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Failure(description: "cannot replace \(path): \(reason)")
        }
    }

    public static func read(from path: String) throws(Failure) -> (version: ConfigVersion, bundles: [String: CertificateBundle]) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Failure(description: "cannot read \(path): \(error.localizedDescription)")
        }
        let document: ConfigDocument
        do { document = try JSONDocumentReader.parse(text) } catch { throw Failure(description: "\(path) is not a last-known-good copy: \(error)") }
        guard let number = document["version"]?.intValue, let created = document["created_at"]?.intValue,
            let actor = document["actor"]?.stringValue, let source = document["source"]?.stringValue.flatMap(ChangeSource.init(rawValue:)),
            let message = document["message"]?.stringValue, let config = document["config"]
        else { throw Failure(description: "\(path) is not a last-known-good copy: a field is missing") }
        var bundles: [String: CertificateBundle] = [:]
        for member in document["certificates"]?.members ?? [] {
            guard let chain = member.value["chain"]?.stringValue, let key = member.value["key"]?.stringValue else {
                throw Failure(description: "\(path) is not a last-known-good copy: certificate \(member.key) is incomplete")
            }
            bundles[member.key] = CertificateBundle(chainPEM: chain, keyPEM: key)
        }
        let version = ConfigVersion(
            number: number, createdAt: AuditChain.date(Int64(created)), actor: actor, source: source, message: message,
            basedOn: document["based_on"]?.intValue, document: config)
        return (version, bundles)
    }
}
