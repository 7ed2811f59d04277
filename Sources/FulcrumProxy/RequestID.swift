import FulcrumCore

/// Generated request IDs: 16 lowercase hex digits (64 random bits) from the loop's generator.
enum RequestID {
    static func make(using random: inout FastRandom) -> String {
        let value = random.next()
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                buffer[index] = digits[Int((value >> (60 - 4 * UInt64(index))) & 0xf)]
            }
            return 16
        }
    }
}
