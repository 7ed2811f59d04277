import FulcrumCore
import FulcrumHTTP1

/// A request's ID, sent to the node and back to the client: the one the client sent, or one
/// Fulcrum generated, 16 lowercase hex digits (64 random bits from the loop's generator). A
/// generated ID stays a number until it is written, so generating one allocates nothing.
enum RequestID: HeadFieldValue {
    case received(String)
    case generated(UInt64)

    static func generate(using random: inout FastRandom) -> RequestID {
        .generated(random.next())
    }

    var isGenerated: Bool {
        if case .generated = self { return true }
        return false
    }

    /// The bytes the ID takes in a head.
    var length: Int {
        switch self {
        case .received(let text): return text.utf8.count
        case .generated: return 16
        }
    }

    /// The ID as text, for the access log and Fulcrum's own responses.
    var text: String {
        switch self {
        case .received(let text):
            return text
        case .generated(let value):
            return String(unsafeUninitializedCapacity: 16) { buffer in
                Self.writeHexDigits(value, to: UnsafeMutableRawBufferPointer(buffer))
                return 16
            }
        }
    }

    /// Writes `value` as 16 lowercase hex digits to the start of `buffer`.
    private static func writeHexDigits(_ value: UInt64, to buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<16 {
            let digit = UInt8((value >> (60 - 4 * UInt64(index))) & 0xf)
            buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") - 10 + digit
        }
    }

    /// Writes the ID to `out`.
    func write(to out: inout HeadWriter) {
        switch self {
        case .received(let text):
            out.append(text)
        case .generated(let value):
            withUnsafeTemporaryAllocation(byteCount: 16, alignment: 1) { digits in
                Self.writeHexDigits(value, to: digits)
                out.append(UnsafeRawBufferPointer(digits))
            }
        }
    }
}
