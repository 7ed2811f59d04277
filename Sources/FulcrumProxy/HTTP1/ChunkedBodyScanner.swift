import FulcrumCore

/// Follows a chunked body (RFC 9112 §7.1) byte by byte without changing it, so that it can be
/// forwarded as received: finds where it ends and refuses invalid framing
/// (a size that is not hexadecimal or too large, control characters in extensions or trailers,
/// CR without LF, data longer than its size).
struct ChunkedBodyScanner {
    private enum State {
        case size(digits: Int, value: Int)
        case sizeExtension(value: Int, length: Int)
        case sizeLF(value: Int)
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerLine(length: Int)
        case trailerLF
        case endLF
        case done
    }

    private var state = State.size(digits: 0, value: 0)

    /// Longest chunk extension or trailer line accepted.
    static let maximumLineBytes = 4096

    var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// Scans `bytes` (what follows what was scanned before) and returns how many of them belong
    /// to the body: all of them, or fewer when the body ends inside them.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(HTTPMessageError) -> Int {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            switch state {
            case .size(let digits, let value):
                if let digit = HTTPSyntax.hexDigitValue(byte) {
                    guard digits < 15 else { throw .malformed("chunk size too large") }
                    state = .size(digits: digits + 1, value: value << 4 | Int(digit))
                } else if digits > 0, byte == HTTPBytes.cr {
                    state = .sizeLF(value: value)
                } else if digits > 0, byte == UInt8(ascii: ";") {
                    state = .sizeExtension(value: value, length: 0)
                } else {
                    throw .malformed("invalid chunk size")
                }
            case .sizeExtension(let value, let length):
                if byte == HTTPBytes.cr {
                    state = .sizeLF(value: value)
                } else {
                    guard HTTPBytes.isFieldValue(byte) else { throw .malformed("invalid chunk extension") }
                    guard length < Self.maximumLineBytes else { throw .malformed("chunk extension too long") }
                    state = .sizeExtension(value: value, length: length + 1)
                }
            case .sizeLF(let value):
                guard byte == HTTPBytes.lf else { throw .malformed("CR without LF in chunked body") }
                state = value == 0 ? .trailerLineStart : .data(remaining: value)
            case .data(let remaining):
                let available = min(remaining, count - index)
                index += available
                state = remaining == available ? .dataCR : .data(remaining: remaining - available)
                continue
            case .dataCR:
                guard byte == HTTPBytes.cr else { throw .malformed("chunk data longer than its size") }
                state = .dataLF
            case .dataLF:
                guard byte == HTTPBytes.lf else { throw .malformed("CR without LF in chunked body") }
                state = .size(digits: 0, value: 0)
            case .trailerLineStart:
                if byte == HTTPBytes.cr {
                    state = .endLF
                } else {
                    guard HTTPBytes.isToken(byte) else { throw .malformed("invalid trailer field") }
                    state = .trailerLine(length: 1)
                }
            case .trailerLine(let length):
                if byte == HTTPBytes.cr {
                    state = .trailerLF
                } else {
                    guard HTTPBytes.isFieldValue(byte) else { throw .malformed("invalid trailer field") }
                    guard length < Self.maximumLineBytes else { throw .malformed("trailer field too long") }
                    state = .trailerLine(length: length + 1)
                }
            case .trailerLF:
                guard byte == HTTPBytes.lf else { throw .malformed("CR without LF in chunked body") }
                state = .trailerLineStart
            case .endLF:
                guard byte == HTTPBytes.lf else { throw .malformed("CR without LF in chunked body") }
                state = .done
                return index + 1
            case .done:
                return index
            }
            index += 1
        }
        return index
    }
}
