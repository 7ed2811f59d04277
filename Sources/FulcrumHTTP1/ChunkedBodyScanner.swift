import FulcrumCore

/// Follows a chunked body (RFC 9112 §7.1) byte by byte without changing it, so that it can be
/// forwarded as received: finds where it ends and refuses invalid framing
/// (a size that is not hexadecimal or too large, control characters in extensions or trailers,
/// CR without LF, data longer than its size).
package struct ChunkedBodyScanner {
    private enum State {
        case size(digits: Int, value: Int)
        case sizeExtension(value: Int, length: Int, part: ExtensionPart)
        case sizeLF(value: Int)
        case data(remaining: Int)
        case dataCR
        case dataLF
        case trailerLineStart
        /// `framing`: which framing field names (bit 0 Content-Length, bit 1 Transfer-Encoding) the name still matches.
        case trailerName(length: Int, framing: UInt8)
        case trailerValue(length: Int)
        case trailerLF
        case endLF
        case done
    }

    /// Where a chunk extension `;name`, `;name=token` or `;name="text"` stands (RFC 9112 §7.1.1,
    /// without the optional whitespace, which nothing sends and which parsers disagree on).
    private enum ExtensionPart {
        case nameStart, name, valueStart, token, quoted, afterQuote
    }

    private var state = State.size(digits: 0, value: 0)

    /// Longest chunk extension or trailer line accepted.
    package static let maximumLineBytes = 4096

    package var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    private static let contentLength = Array("content-length".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)

    /// Which of the framing field names still match a trailer name whose byte at `position` is `byte`.
    private static func framingNames(matching candidates: UInt8, _ byte: UInt8, at position: Int) -> UInt8 {
        let lower = HTTPBytes.lowercased(byte)
        var still: UInt8 = 0
        if candidates & 0b01 != 0, position < contentLength.count, contentLength[position] == lower { still |= 0b01 }
        if candidates & 0b10 != 0, position < transferEncoding.count, transferEncoding[position] == lower { still |= 0b10 }
        return still
    }

    /// Scans `bytes` (what follows what was scanned before) and returns how many of them belong
    /// to the body: all of them, or fewer when the body ends inside them.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(HTTPMessageError) -> Int {
        try scan(bytes) { _ in }
    }

    /// The data of a whole chunked body (its framing, extensions and trailers left out), for a
    /// route that matches on the body; the body is forwarded as received.
    package static func data(of body: [UInt8]) throws(HTTPMessageError) -> [UInt8] {
        var scanner = ChunkedBodyScanner()
        var data: [UInt8] = []
        let result: Result<Int, HTTPMessageError> = body.withUnsafeBytes { raw in
            do throws(HTTPMessageError) {
                return .success(try scanner.scan(raw) { range in data.append(contentsOf: raw[range]) })
            } catch {
                return .failure(error)
            }
        }
        _ = try result.get()
        return data
    }

    /// ``scan(_:)``, calling `data` with each run of chunk data among `bytes`.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer, data: (Range<Int>) -> Void) throws(HTTPMessageError) -> Int {
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
                    state = .sizeExtension(value: value, length: 0, part: .nameStart)
                } else {
                    throw .malformed("invalid chunk size")
                }
            case .sizeExtension(let value, let length, let part):
                guard length < Self.maximumLineBytes else { throw .malformed("chunk extension too long") }
                let next: ExtensionPart
                switch (part, byte) {
                case (.name, HTTPBytes.cr), (.token, HTTPBytes.cr), (.afterQuote, HTTPBytes.cr):
                    state = .sizeLF(value: value)
                    index += 1
                    continue
                case (.name, UInt8(ascii: ";")), (.token, UInt8(ascii: ";")), (.afterQuote, UInt8(ascii: ";")): next = .nameStart
                case (.name, UInt8(ascii: "=")): next = .valueStart
                case (.valueStart, UInt8(ascii: "\"")): next = .quoted
                case (.quoted, UInt8(ascii: "\"")): next = .afterQuote
                case (.quoted, _) where byte != UInt8(ascii: "\\") && (byte == HTTPBytes.tab || (byte >= 0x20 && byte < 0x7F)): next = .quoted
                case (.nameStart, _) where HTTPBytes.isToken(byte), (.name, _) where HTTPBytes.isToken(byte): next = .name
                case (.valueStart, _) where HTTPBytes.isToken(byte), (.token, _) where HTTPBytes.isToken(byte): next = .token
                default: throw .malformed("invalid chunk extension")
                }
                state = .sizeExtension(value: value, length: length + 1, part: next)
            case .sizeLF(let value):
                guard byte == HTTPBytes.lf else { throw .malformed("CR without LF in chunked body") }
                state = value == 0 ? .trailerLineStart : .data(remaining: value)
            case .data(let remaining):
                let available = min(remaining, count - index)
                data(index..<(index + available))
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
                    state = .trailerName(length: 1, framing: Self.framingNames(matching: 0b11, byte, at: 0))
                }
            case .trailerName(let length, let framing):
                if byte == HTTPBytes.colon {
                    // framing fields are not allowed in trailers (RFC 9110 §6.5.1)
                    if (framing & 0b01 != 0 && length == 14) || (framing & 0b10 != 0 && length == 17) {
                        throw .malformed("framing field in a trailer")
                    }
                    state = .trailerValue(length: length + 1)
                } else {
                    guard HTTPBytes.isToken(byte) else { throw .malformed("invalid trailer field") }
                    guard length < Self.maximumLineBytes else { throw .malformed("trailer field too long") }
                    state = .trailerName(length: length + 1, framing: Self.framingNames(matching: framing, byte, at: length))
                }
            case .trailerValue(let length):
                if byte == HTTPBytes.cr {
                    state = .trailerLF
                } else {
                    guard HTTPBytes.isFieldValue(byte) else { throw .malformed("invalid trailer field") }
                    guard length < Self.maximumLineBytes else { throw .malformed("trailer field too long") }
                    state = .trailerValue(length: length + 1)
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
