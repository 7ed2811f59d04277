import Foundation
import FulcrumStore

/// Admin API tokens: random secrets shown once, stored only as their SHA-256, checked in constant time.
public enum AdminTokens {
    /// A new secret: `fulcrum_` and 32 random bytes in hex (256 bits from the system generator).
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        var secret = "fulcrum_"
        for _ in 0..<32 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            secret.append(digits[Int(byte >> 4)])
            secret.append(digits[Int(byte & 0x0F)])
        }
        return secret
    }

    /// The hex SHA-256 of a secret, as stored.
    public static func hash(_ secret: String) -> String {
        SHA256Hex.digest(secret)
    }

    /// The token whose hash equals the presented secret's. Every stored hash is compared in full,
    /// whatever matches, so the time taken reveals nothing about the stored hashes.
    public static func authenticate(_ presented: String, among tokens: [StoredToken]) -> StoredToken? {
        let presentedHash = Array(hash(presented).utf8)
        var found: StoredToken?
        for token in tokens {
            if constantTimeEqual(presentedHash, Array(token.secretHash.utf8)) { found = token }
        }
        return found
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// Valid token names: 1 to 64 letters, digits, '-', '_' or '.'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) }
    }
}
