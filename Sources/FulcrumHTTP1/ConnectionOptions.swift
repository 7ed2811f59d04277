/// What the `Connection` header fields of a head say (RFC 9110 §7.6.1).
package struct ConnectionOptions {
    package var close = false
    package var keepAlive = false
    package var upgrade = false
    /// Whether other options are listed: header names that are hop-by-hop for this message.
    package var namesOtherFields = false

    /// Adds the options of one `Connection` field.
    package mutating func add(_ bytes: UnsafeRawBufferPointer, _ field: HTTPField) {
        HTTPFieldSection.forEachElement(bytes, field) { start, end in
            if HTTPBytes.equalsIgnoringCase(bytes, start, end, "close") {
                close = true
            } else if HTTPBytes.equalsIgnoringCase(bytes, start, end, "keep-alive") {
                keepAlive = true
            } else if HTTPBytes.equalsIgnoringCase(bytes, start, end, "upgrade") {
                upgrade = true
            } else {
                namesOtherFields = true
            }
        }
    }

    /// Whether the connection stays open after this message, for an HTTP/1.`minorVersion` message.
    package func persists(minorVersion: Int) -> Bool {
        minorVersion >= 1 ? !close : keepAlive && !close
    }
}
