import FulcrumCore
import Testing

@Suite struct HTTPSyntaxTests {
    /// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
    /// "_" / "`" / "|" / "~" / DIGIT / ALPHA.
    static let tokenBytes = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    @Test func tokenBytesAreExactlyTheRFCs() {
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPSyntax.isTokenByte(byte) == Self.tokenBytes.contains(byte), "byte \(byte)")
        }
    }

    @Test func tokensAreNonEmptyRunsOfTokenBytes() {
        #expect(HTTPSyntax.isToken("X-Request-ID"))
        #expect(!HTTPSyntax.isToken(""))
        #expect(!HTTPSyntax.isToken("X Request"))
        #expect(!HTTPSyntax.isToken("Name:"))
        #expect(!HTTPSyntax.isToken("Grüße"))
    }
}
