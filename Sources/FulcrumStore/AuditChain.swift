import Crypto
import Foundation

/// The hash chain that makes the audit log tamper-evident: each entry's hash covers the previous
/// entry's hash and every field of the entry, so editing, removing or reordering a stored entry
/// breaks the chain from that entry on. (Cutting entries off the end leaves a valid shorter
/// chain; compare ``AuditVerification/headHash`` with a copy kept elsewhere to detect that.)
public enum AuditChain {
    /// The "previous hash" of the first entry.
    public static let genesis = String(repeating: "0", count: 64)

    /// The hex SHA-256 of an entry. Fields are length-prefixed, so no choice of field contents
    /// can make two different entries encode alike.
    public static func hash(previous: String, sequence: Int, record: AuditRecord, version: Int?) -> String {
        var encoded = ""
        for field in [
            previous, String(sequence), String(milliseconds(record.time)), record.actor, record.client, record.operation,
            record.target, record.result, record.detail, version.map(String.init) ?? "-",
        ] {
            encoded += "\(field.utf8.count):\(field);"
        }
        return SHA256Hex.digest(encoded)
    }

    /// Milliseconds since 1970, the precision entries are stored with.
    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}

/// SHA-256 written as 64 lower-case hex digits: audit entry hashes and stored token hashes.
public enum SHA256Hex {
    public static func digest(_ text: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        for byte in SHA256.hash(data: Data(text.utf8)) {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
