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

    /// The date of a stored number of milliseconds.
    static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// The entry that follows `last` (the newest stored entry's sequence number and hash; `nil`
    /// for the first entry), with the record's time cut to the stored precision.
    static func entry(after last: (sequence: Int, hash: String)?, record: AuditRecord, version: Int?) -> AuditEntry {
        let sequence = (last?.sequence ?? 0) + 1
        let previous = last?.hash ?? genesis
        var stored = record
        stored.time = date(milliseconds(record.time))
        return AuditEntry(
            sequence: sequence, record: stored, version: version, previousHash: previous,
            hash: hash(previous: previous, sequence: sequence, record: stored, version: version))
    }

    /// Recomputes the chain over stored entries fed to it oldest first (``check(_:)``), stopping
    /// at the first that does not match.
    struct Verifier {
        private var previous = AuditChain.genesis
        private var count = 0
        private(set) var broken: AuditVerification?

        /// Checks the next entry; false once the chain is broken (the rest need not be read).
        mutating func check(_ entry: AuditEntry) -> Bool {
            guard broken == nil else { return false }
            count += 1
            let problem: String? =
                if entry.sequence != count { "entry \(count) is missing" }
                else if entry.previousHash != previous { "does not link to the entry before it" }
                else if hash(previous: previous, sequence: entry.sequence, record: entry.record, version: entry.version) != entry.hash {
                    "its content does not match its hash"
                } else { nil }
            if let problem {
                broken = AuditVerification(entries: count, firstBroken: entry.sequence, problem: problem, headHash: previous)
                return false
            }
            previous = entry.hash
            return true
        }

        var result: AuditVerification {
            broken ?? AuditVerification(entries: count, firstBroken: nil, problem: nil, headHash: previous)
        }
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
