import NIOCore

/// Copies the pieces of a head Fulcrum writes (received bytes, literals, configured strings)
/// straight into a buffer's memory. The whole head is one capacity reservation and one write on the
/// buffer, instead of one `ByteBuffer` call, with its capacity and uniqueness checks, per piece.
/// Made by ``NIOCore/ByteBuffer/writeHead(maximumLength:_:)``, which reserves room for the
/// longest head the caller can write; going past it is a programming error and traps.
package struct HeadWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// Bytes written so far.
    package private(set) var count = 0

    fileprivate init(_ memory: UnsafeMutableRawBufferPointer) {
        base = memory.baseAddress!
        capacity = memory.count
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= capacity - count, "head longer than the room reserved for it")
        if let source = bytes.baseAddress { (base + count).copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    package mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
    }

    package mutating func append(_ text: String) {
        HTTPBytes.withBytes(of: text) { append($0) }
    }

    package mutating func append(_ text: Substring) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `name: value` and its line end.
    package mutating func appendField(_ name: String, _ value: some HeadFieldValue) {
        append(name)
        append(": ")
        value.write(to: &self)
        append("\r\n")
    }

    /// The room a field written by ``appendField(_:_:)`` takes.
    package static func fieldLength(_ name: String, _ value: some HeadFieldValue) -> Int {
        name.utf8.count + value.length + 4
    }
}

/// A field value Fulcrum writes into a head (``HeadWriter/appendField(_:_:)``), whose length is
/// known before it is written.
package protocol HeadFieldValue {
    /// The bytes the value takes.
    var length: Int { get }
    func write(to out: inout HeadWriter)
}

extension String: HeadFieldValue {
    package var length: Int { utf8.count }
    package func write(to out: inout HeadWriter) { out.append(self) }
}

extension ByteBuffer {
    /// Heads whose buffer is kept for the next head: most are far smaller; a rare large one is
    /// not kept, so idle connections do not hold its memory.
    package static let reusedHeadCapacity = 4096

    /// Takes the buffer for writing the next head into: empty, in the same memory when nothing
    /// else holds it any more (the channel has written it and its exchange is over), in new
    /// memory otherwise. Leaves `empty` behind.
    package mutating func takeForNextHead(leaving empty: ByteBuffer) -> ByteBuffer {
        var taken = empty
        swap(&taken, &self)
        taken.clear()
        return taken
    }

    /// Keeps `head`'s buffer for ``takeForNextHead(leaving:)`` unless it grew large.
    package mutating func keepForNextHead(_ head: ByteBuffer) {
        if head.capacity <= Self.reusedHeadCapacity { self = head }
    }

    /// Writes a head of at most `maximumLength` bytes with one ``HeadWriter``; writing more traps.
    package mutating func writeHead(maximumLength: Int, _ write: (inout HeadWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: maximumLength) { memory in
            var writer = HeadWriter(UnsafeMutableRawBufferPointer(rebasing: memory.prefix(maximumLength)))
            write(&writer)
            return writer.count
        }
    }
}
