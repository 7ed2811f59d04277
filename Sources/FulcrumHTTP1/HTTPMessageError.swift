/// Why an HTTP/1.1 message was refused by Fulcrum's reader. A request refused this way gets
/// ``status`` and the connection is closed; a response refused this way becomes a 502.
package struct HTTPMessageError: Error, Equatable, CustomStringConvertible {
    /// The status a client gets for a request refused for this reason.
    package let status: UInt
    /// What is wrong, for the error page and the log.
    package let reason: String

    package var description: String { reason }

    /// A message whose syntax or framing is invalid or ambiguous (400).
    package static func malformed(_ reason: String) -> HTTPMessageError { HTTPMessageError(status: 400, reason: reason) }

    /// A head larger than the reader accepts (431).
    package static let headTooLarge = HTTPMessageError(status: 431, reason: "the request head is larger than 64 KiB")

    /// A head with more than ``HTTPFieldSection/maximumFields`` field lines (431, as too large).
    package static let tooManyFields = HTTPMessageError(
        status: 431, reason: "the request head has more than \(HTTPFieldSection.maximumFields) header fields")

    /// An HTTP version other than 1.0 and 1.1 (505).
    package static let unsupportedVersion = HTTPMessageError(status: 505, reason: "only HTTP/1.0 and HTTP/1.1 are served")

    /// A transfer coding other than `chunked` alone (501).
    package static let unsupportedTransferCoding = HTTPMessageError(
        status: 501, reason: "Transfer-Encoding other than 'chunked' alone is not supported")
}
